/**
 * A production install from the release artifacts (scripts/release.mjs): each program's tarball unpacked into a
 * fresh folder, with production dependencies only (no tsx, no TypeScript sources), runs with plain node: the
 * fleet starts with its embedded broker, its CLI registers a box, the box claims, comes online and its events
 * are stored at the fleet.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unitNodeFlags } from '../bench/unit-flags.js';
import { waitFor as wait } from '../shared/wait.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'callbox-release-'));
const procs: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms: number,
  log: () => string,
): Promise<T> {
  try {
    return (await wait(() => probe().catch(() => undefined), what, { timeoutMs: ms, intervalMs: 250 })) as T;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${log().slice(-3000)}`);
  }
}

/** Build the release of one program and unpack its tarball into a fresh folder; returns the installed folder. */
async function install(program: 'device' | 'fleet'): Promise<string> {
  const out = join(work, 'artifacts');
  const { stdout } = await run(process.execPath, [join(repo, 'scripts', 'release.mjs'), program, '--out', out], {
    cwd: repo,
    maxBuffer: 16 * 2 ** 20,
  });
  const tarball = stdout.trim().split('\n').pop() ?? '';
  expect(tarball).toMatch(new RegExp(`callbox-${program}-[0-9.]+-linux-${process.arch}\\.tar\\.gz$`));
  const target = join(work, `install-${program}`);
  mkdirSync(target);
  await run('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  return target;
}

function start(cmd: string[], cwd: string, env: NodeJS.ProcessEnv): { proc: ChildProcess; log: () => string } {
  let out = '';
  const proc = spawn(process.execPath, cmd, {
    cwd,
    env: { ...env, CALLBOX_LOG_FORMAT: 'json', CALLBOX_LOG_LEVEL: 'info', NOTIFY_SOCKET: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { proc, log: () => out };
}

describe('a production install from the release artifacts', () => {
  let deviceDir: string;
  let fleetDir: string;

  beforeAll(async () => {
    // Sequential: both stage from the same build.
    fleetDir = await install('fleet');
    deviceDir = await install('device');
  }, 600_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    // Two unpacked releases and their tarballs: thousands of files, slow on a loaded machine.
    await rm(work, { recursive: true, force: true });
  }, 180_000);

  it('ships the built dashboard in the fleet release (dist/fleet/ui), in its manifest', () => {
    const index = readFileSync(join(fleetDir, 'dist', 'fleet', 'ui', 'index.html'), 'utf8');
    expect(index).toMatch(/<callbox-app>/);
    const manifest = JSON.parse(readFileSync(join(fleetDir, 'MANIFEST.json'), 'utf8')) as {
      files: Record<string, string>;
    };
    expect(Object.keys(manifest.files).some((f) => /^dist\/fleet\/ui\/assets\/index-.*\.js$/.test(f))).toBe(true);
  });

  it('carries production dependencies only, no sources, and a manifest that matches its files', async () => {
    for (const dir of [deviceDir, fleetDir]) {
      for (const dev of ['tsx', 'vitest', '@biomejs', 'typescript', 'esbuild', 'playwright-core']) {
        expect(existsSync(join(dir, 'node_modules', dev)), `${dir}: ${dev}`).toBe(false);
      }
      expect(existsSync(join(dir, 'device', 'main.ts')) || existsSync(join(dir, 'fleet', 'main.ts'))).toBe(false);
      const manifest = JSON.parse(readFileSync(join(dir, 'MANIFEST.json'), 'utf8')) as {
        files: Record<string, string>;
        arch: string;
      };
      expect(manifest.arch).toBe(process.arch);
      const files = Object.entries(manifest.files);
      expect(files.length).toBeGreaterThan(100);
      for (const [file, sha] of files.filter(([f]) => f.startsWith('dist/') || f === 'package.json')) {
        expect(
          createHash('sha256')
            .update(readFileSync(join(dir, file)))
            .digest('hex'),
          file,
        ).toBe(sha);
      }
    }
    for (const dir of [deviceDir, fleetDir]) {
      const ok = await run(process.execPath, [join(dir, 'scripts', 'verify-release.mjs')]);
      expect(ok.stdout).toMatch(/files match/);
    }
    // A modified file is found by the release's own check.
    const victim = join(deviceDir, 'dist', 'device', 'packages.json');
    const original = readFileSync(victim);
    writeFileSync(victim, '[]\n');
    await expect(run(process.execPath, [join(deviceDir, 'scripts', 'verify-release.mjs')])).rejects.toMatchObject({
      stderr: expect.stringMatching(/modified: dist\/device\/packages\.json/),
    });
    writeFileSync(victim, original);
    // The box does not carry the fleet's packages, nor the fleet the box's hardware bindings.
    for (const fleetOnly of ['aedes', 'pg', 'fastify']) {
      expect(existsSync(join(deviceDir, 'node_modules', fleetOnly)), fleetOnly).toBe(false);
    }
    for (const boxOnly of ['serialport', 'johnny-five', 'node-hid']) {
      expect(existsSync(join(fleetDir, 'node_modules', boxOnly)), boxOnly).toBe(false);
    }
    // The virtual IO board (a stand-in) is not in the box's main bundle: it is a chunk loaded only when configured.
    expect(readFileSync(join(deviceDir, 'dist', 'device', 'main.js'), 'utf8')).not.toMatch(/name = "VirtualIo"/);
    const chunks = readdirSync(join(deviceDir, 'dist', 'device', 'chunks')).filter((f) => f.endsWith('.js'));
    expect(
      chunks.some((f) =>
        readFileSync(join(deviceDir, 'dist', 'device', 'chunks', f), 'utf8').includes('name = "VirtualIo"'),
      ),
    ).toBe(true);
  });

  it('runs the fleet and a box with plain node: claim, online, events stored', async () => {
    const port = await freePort();
    const data = join(work, 'fleet-data');
    mkdirSync(data);
    const fleetConfig = join(data, 'fleet.yaml');
    writeFileSync(
      fleetConfig,
      [
        'mqtt:',
        '  host: 127.0.0.1',
        `  port: ${port}`,
        'store:',
        `  sqlitePath: ${join(data, 'fleet.db')}`,
        'http:',
        '  port: 0',
        'ops:',
        `  bootstrapPasswordFile: ${join(data, 'admin.secret')}`,
        '',
      ].join('\n'),
    );
    const fleet = start([join(fleetDir, 'dist', 'fleet', 'main.js'), '--config', fleetConfig], data, process.env);
    await waitFor(
      'fleet running',
      async () => (/fleet running/.test(fleet.log()) ? true : undefined),
      60_000,
      fleet.log,
    );

    const cli = (...args: string[]) =>
      run(
        process.execPath,
        [
          join(fleetDir, 'fleet', 'bin', 'fleet.js'),
          '--url',
          `mqtt://127.0.0.1:${port}`,
          '--password-file',
          join(data, 'admin.secret'),
          ...args,
        ],
        { cwd: data },
      );
    await cli('boxes', 'register', 'CB-REL-0001', '--secret', 'release-secret-0001');

    const boxData = join(work, 'box-data');
    mkdirSync(boxData);
    const deviceConfig = join(boxData, 'device.yaml');
    writeFileSync(
      deviceConfig,
      [
        'box:',
        '  serial: CB-REL-0001',
        '  claimSecret: release-secret-0001',
        `  dataDir: ${boxData}`,
        'mqtt:',
        `  url: mqtt://127.0.0.1:${port}`,
        '  claimRetryS: 1',
        'modem:',
        `  path: ${join(boxData, 'no-modem-here')}`,
        'io:',
        '  board: virtual',
        '',
      ].join('\n'),
    );
    // With the Node.js flags of the box's systemd unit (--lite-mode and a small young generation), as a Pi runs it.
    const box = start(
      [...unitNodeFlags(), join(deviceDir, 'device', 'bin', 'callbox-device.js'), '--config', deviceConfig],
      boxData,
      process.env,
    );
    const log = () => `--- fleet\n${fleet.log().slice(-1500)}\n--- box\n${box.log().slice(-1500)}`;

    const online = await waitFor(
      'box online at the fleet',
      async () => {
        const { stdout } = await cli('--json', 'boxes', 'list');
        const rows = JSON.parse(stdout) as { serial: string; deviceId: string; online?: boolean; claimState: string }[];
        return rows.find((r) => r.serial === 'CB-REL-0001' && r.claimState === 'approved' && r.online);
      },
      60_000,
      log,
    );
    const events = await waitFor(
      'an event from the box stored',
      async () => {
        const { stdout } = await cli('--json', 'events', '--box', online.deviceId);
        const rows = JSON.parse(stdout) as { type: string }[];
        return rows.length > 0 ? rows : undefined;
      },
      30_000,
      log,
    );
    expect(events.map((e) => e.type)).toContain('modem.state');
    // Plain node, from the built files: no TypeScript loader in either process.
    expect(fleet.log()).not.toMatch(/tsx/);
    expect(box.log()).not.toMatch(/ERR_UNKNOWN_FILE_EXTENSION|Cannot find module/);
  }, 150_000);
});
