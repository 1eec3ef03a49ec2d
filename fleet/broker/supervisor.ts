/**
 * Runs the embedded broker (fleet/broker/child.ts) in a child process and
 * restarts it when it dies, with backoff (100 ms doubling to 5 s, reset
 * after a minute of good running). Credentials live here (loaded from the
 * store by the caller) and are sent whole at every start, so a restarted
 * broker knows every box before it accepts connections.
 *
 * The first start picks the ports (0: any free one) and restarts reuse the
 * same ports, so boxes reconnect to where they were.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Backoff } from '../../shared/backoff.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type {
  BrokerCredential,
  BrokerLimits,
  BrokerListenOptions,
  BrokerStats,
  FromChild,
  ToChild,
} from './protocol.js';

const log = getLogger('fleet:broker');

export interface SupervisorOptions {
  listen: BrokerListenOptions;
  limits: BrokerLimits;
  claimTrustOnFirstUse: boolean;
  credentials: BrokerCredential[];
  /** Claim usernames not to trust on first use (rejected or decommissioned boxes). */
  blocked: string[];
  /** Claim usernames of claims waiting for ops (their number is capped by limits.claimPendingMax). */
  pendingClaims?: string[];
  /** Called when the broker saw an unknown serial's claim secret (trust on first use). */
  onClaimSeen?: (serial: string, hash: string) => void;
}

export interface BrokerPorts {
  /** Plaintext MQTT for clients; null when TLS only. */
  tcp: number | null;
  /** Loopback plaintext listener for the fleet's own client when there is no `tcp` (the fleet identity only). */
  internal: number | null;
  tls: number | null;
  ws: number | null;
}

function tsxLoader(): string {
  const require = createRequire(import.meta.url);
  return pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;
}

/**
 * The broker child's entry: in a built fleet (`npm run build`, dist/fleet/main.js) the bundled
 * dist/fleet/broker-child.js beside it, run by plain node; from the sources, child.ts through tsx.
 */
function childEntry(): { file: string; loader: string[] } {
  const here = dirname(fileURLToPath(import.meta.url));
  const built = join(here, 'broker-child.js');
  if (existsSync(built)) return { file: built, loader: [] };
  return { file: join(here, 'child.ts'), loader: ['--import', tsxLoader()] };
}

const LISTENER_NAMES = {
  tcp: 'MQTT/TCP',
  tls: 'MQTT/TLS',
  ws: 'MQTT/WebSocket',
  internal: 'the internal MQTT/TCP (loopback, fleet only)',
} as const;
const CONFIG_KEYS = { tcp: 'port', tls: 'tlsPort', ws: 'wsPort', internal: 'port' } as const;

export class BrokerSupervisor extends EventEmitter {
  private child: ChildProcess | undefined;
  private readonly creds = new Map<string, BrokerCredential>();
  private readonly blocked = new Set<string>();
  private readonly pending = new Set<string>();
  private stopping = false;
  /** Restart delays: 100 ms doubling to 5 s. */
  private readonly restartBackoff = new Backoff({ initial: 100, max: 5000 });
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private statsWaiters: ((s: BrokerStats) => void)[] = [];
  /** The broker's counters as last pushed (within a second of a change); undefined before any. */
  lastStats: BrokerStats | undefined;
  /** Set after the first successful start. */
  ports: BrokerPorts | undefined;
  restarts = 0;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    for (const c of opts.credentials) this.creds.set(c.username, c);
    for (const u of opts.blocked) this.blocked.add(u);
    for (const u of opts.pendingClaims ?? []) this.pending.add(u);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start the broker; rejects with BrokerPortInUse (saying what to do) if a port is taken. */
  async start(): Promise<BrokerPorts> {
    this.stopping = false;
    const ports = await this.spawn();
    this.ports = ports;
    return ports;
  }

  private spawn(): Promise<BrokerPorts> {
    return new Promise((resolve, reject) => {
      const entry = childEntry();
      const child = fork(entry.file, [], {
        // No --stack-size: the router's recursion (the stack overflow under overload) is cut at its cause by
        // mq-guard.ts, which drains a 30,000-message backlog on the default stack (fleet-broker-router-recursion test).
        execArgv: entry.loader,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      this.child = child;
      let ready = false;
      // A send racing the child's exit fails with EPIPE; the 'exit' handler deals with the death itself.
      child.on('error', (err) => log.warn({ err: err.message }, 'broker process channel error'));
      child.on('message', (m: FromChild) => {
        switch (m.t) {
          case 'ready':
            ready = true;
            this.startedAt = Date.now();
            log.info({ ports: m.ports, pid: m.pid, restarts: this.restarts }, 'broker ready');
            this.emit('ready', m.ports);
            resolve(m.ports);
            break;
          case 'listen-error': {
            const err =
              m.code === 'EADDRINUSE'
                ? new CallboxError(
                    ErrorCode.BrokerPortInUse,
                    `the embedded broker cannot listen for ${LISTENER_NAMES[m.listener]} on ${m.host}:${m.port}: ` +
                      'the port is in use (another MQTT broker, such as the machine’s Mosquitto?). Either choose ' +
                      `another port: set mqtt.${CONFIG_KEYS[m.listener]} in the fleet configuration file or ` +
                      `CALLBOX_FLEET__MQTT__${CONFIG_KEYS[m.listener].replace(/([A-Z])/g, '_$1').toUpperCase()}=<port>; ` +
                      'or use the broker already running: set mqtt.mode to "external" ' +
                      '(CALLBOX_FLEET__MQTT__MODE=external) with mqtt.externalUrl, and give it the configuration ' +
                      'from `fleet mosquitto-config`.',
                    { host: m.host, port: m.port, listener: m.listener },
                  )
                : new CallboxError(
                    ErrorCode.BrokerFailed,
                    `the embedded broker cannot listen on ${m.host}:${m.port}: ${m.message}`,
                    { host: m.host, port: m.port, listener: m.listener },
                  );
            if (!ready) {
              this.stopping = true;
              child.kill('SIGKILL');
              reject(err);
            } else log.error({ err }, 'broker listener failed');
            break;
          }
          case 'claim-seen':
            this.pending.add(`claim:${m.serial}`);
            this.creds.set(`claim:${m.serial}`, {
              username: `claim:${m.serial}`,
              kind: 'claim',
              subject: m.serial,
              hash: m.hash,
            });
            this.opts.onClaimSeen?.(m.serial, m.hash);
            break;
          case 'stats':
            this.lastStats = m.stats;
            for (const w of this.statsWaiters.splice(0)) w(m.stats);
            break;
          case 'refused':
            log.warn(
              { kind: m.kind, who: m.who, source: m.source, reason: m.reason, suppressed: m.suppressed },
              'broker refused',
            );
            break;
          case 'revoked':
            log.info({ username: m.username, closed: m.closed }, 'credential revoked in broker');
            this.emit('revoked', m.username, m.closed);
            break;
        }
      });
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (!ready && !this.stopping) {
          reject(
            new CallboxError(ErrorCode.BrokerFailed, `the embedded broker exited at start (code ${code}, ${signal})`),
          );
          return;
        }
        if (this.stopping) return;
        log.error({ code, signal }, 'broker process died; restarting');
        this.emit('exit', { code, signal });
        this.scheduleRestart();
      });
      const listen = this.ports
        ? {
            ...this.opts.listen,
            port: this.ports.tcp,
            tlsPort: this.ports.tls,
            wsPort: this.ports.ws,
            internalPort: this.ports.internal,
          }
        : this.opts.listen;
      this.sendTo(child, {
        t: 'start',
        listen,
        limits: this.opts.limits,
        claimTrustOnFirstUse: this.opts.claimTrustOnFirstUse,
        credentials: [...this.creds.values()],
        blocked: [...this.blocked],
        pendingClaims: [...this.pending],
      });
    });
  }

  private scheduleRestart(): void {
    if (Date.now() - this.startedAt > 60_000) this.restartBackoff.reset();
    const delay = this.restartBackoff.next();
    this.restartTimer = setTimeout(() => {
      this.restarts++;
      this.spawn().then(
        (ports) => this.emit('restarted', ports),
        (err) => {
          log.error({ err }, 'broker restart failed');
          if (!this.stopping) this.scheduleRestart();
        },
      );
    }, delay);
  }

  private sendTo(child: ChildProcess | undefined, msg: ToChild): void {
    if (child?.connected) child.send(msg);
  }

  /** Add or replace a credential (a replaced secret ends the old sessions). */
  putCredential(c: BrokerCredential): void {
    this.creds.set(c.username, c);
    this.sendTo(this.child, { t: 'cred', credential: c });
  }

  /**
   * Forget a credential and close its sessions at once. A claim username is blocked from trust on first use
   * too, unless `block` is false (an expired claim: its serial may be claimed anew).
   */
  revoke(username: string, reason: string, block = true): void {
    this.creds.delete(username);
    this.pending.delete(username);
    const blocks = block && username.startsWith('claim:');
    if (blocks) this.blocked.add(username);
    this.sendTo(this.child, { t: 'revoke', username, reason, block: blocks });
  }

  /** A claim waiting for ops was approved or rejected: it no longer counts against claimPendingMax. */
  claimSettled(serial: string): void {
    this.pending.delete(`claim:${serial}`);
    this.sendTo(this.child, { t: 'claim-settled', username: `claim:${serial}` });
  }

  async stats(timeoutMs = 2000): Promise<BrokerStats | undefined> {
    if (!this.child?.connected) return undefined;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(undefined), timeoutMs);
      this.statsWaiters.push((s) => {
        clearTimeout(t);
        resolve(s);
      });
      this.sendTo(this.child, { t: 'stats' });
    });
  }

  /** Kill the broker process (tests and drills: the supervisor restarts it). */
  crash(): void {
    this.child?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
      }, 3000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      if (child.connected) {
        child.send({ t: 'stop' } satisfies ToChild, (err) => {
          if (err) child.kill('SIGTERM');
        });
      } else child.kill('SIGTERM');
    });
  }
}
