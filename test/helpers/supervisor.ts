/**
 * A small stand-in for systemd running callbox-device.service, for tests on one machine:
 *   ExecStartPre  node <root>/guard.mjs --root <root> --data <dataDir>   (the copy outside the releases)
 *   ExecStart     node <root>/current/dist/device/main.js --config <file>
 *   Restart=always, RestartSec, RestartPreventExitStatus=78
 * Every start resolves `current` anew, so a switched link starts the other release, as systemd would.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SupervisorOptions {
  name: string;
  /** The install root (/opt/callbox): guard.mjs, current -> releases/<version>. */
  root: string;
  dataDir: string;
  configFile: string;
  /** node flags before the program (e.g. a TypeScript loader). */
  nodeArgs?: string[];
  maxStarts?: number;
  restartMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class Supervisor {
  starts = 0;
  readonly exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
  readonly guardOutput: string[] = [];
  private out = '';
  private proc: ChildProcess | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: SupervisorOptions) {}

  /** The last 400 KB the program and the guard printed. */
  get log(): string {
    return this.out;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  private append(s: string): void {
    this.out = (this.out + s).slice(-400_000);
  }

  start(): void {
    void this.startOnce();
  }

  private async startOnce(): Promise<void> {
    if (this.stopped) return;
    const o = this.opts;
    try {
      const g = await run(process.execPath, [
        join(o.root, 'guard.mjs'),
        '--root',
        o.root,
        '--data',
        o.dataDir,
        '--max-starts',
        String(o.maxStarts ?? 3),
      ]);
      const said = `${g.stdout}${g.stderr}`.trim();
      if (said) {
        this.guardOutput.push(said);
        this.append(`[guard] ${said}\n`);
      }
    } catch (e) {
      // systemd would not start the program when ExecStartPre fails; the guard never exits non-zero by design.
      this.append(`[guard failed] ${(e as Error).message}\n`);
    }
    if (this.stopped) return;
    this.starts++;
    const proc = spawn(
      process.execPath,
      [...(o.nodeArgs ?? []), join(o.root, 'current', 'dist', 'device', 'main.js'), '--config', o.configFile],
      {
        cwd: o.root,
        env: { ...process.env, CALLBOX_LOG_FORMAT: 'json', NOTIFY_SOCKET: '', ...o.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => this.append(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => this.append(d.toString()));
    proc.once('exit', (code, signal) => {
      this.exits.push({ code, signal });
      this.append(`[exit] code ${code} signal ${signal}\n`);
      if (this.proc === proc) this.proc = undefined;
      if (this.stopped || code === 78) return;
      this.timer = setTimeout(() => void this.startOnce(), o.restartMs ?? 300);
    });
  }

  /** Send a signal to the running program (SIGKILL: a crash or a power cut of the process). */
  kill(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
}
