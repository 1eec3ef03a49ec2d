/**
 * The MQTT link to the fleet (mqtt.js, MQTT 3.1.1 so that aedes and
 * Mosquitto both speak it).
 *
 * - TLS with a pinned CA whenever the broker is not on loopback: a plain
 *   mqtt:// URL to another host is refused at start, and mqtts:// needs a
 *   CA (from provisioning or mqtt.caFile); the system trust store is not
 *   used, so only the fleet's own CA is accepted.
 * - A device connects with clean: false and a stable client id
 *   (callbox-<deviceId>) so the broker keeps its subscriptions and queued
 *   QoS 1 messages (commands, configuration) while it is away; a retained
 *   status "online" is published at every connect and the last will
 *   publishes a retained "offline".
 * - Reconnects are ours, not mqtt.js's fixed period: exponential from
 *   reconnectMinMs to reconnectMaxMs with jitter ("equal jitter": half the
 *   delay fixed, half random), so a fleet restart is not hit by every box
 *   in the same second, and an outage of hours costs one attempt per
 *   reconnectMaxMs. One client object lives for the whole run, so mqtt.js
 *   resends unacknowledged QoS 1 messages after a reconnect.
 * - A broker that refuses the credentials (CONNACK 4 or 5) ends the
 *   reconnect loop with state "unauthorized": the box decides (revoked
 *   device credentials -> back to waiting for provisioning).
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { backoffDelay as backoff } from '../../shared/backoff.js';
import type { Status } from '../../shared/contract/messages.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';

export type LinkState = 'idle' | 'connecting' | 'online' | 'offline' | 'unauthorized' | 'stopped';

export interface LinkIdentity {
  kind: 'device' | 'claim';
  /** device id, or the serial for a claim. */
  id: string;
  username: string;
  password: string;
}

export interface LinkOptions {
  url: string;
  /**
   * More brokers of the same engine (a cluster): the link is on one at a
   * time and, when it fails, tries the next in turn (url first).
   */
  urls?: readonly string[];
  identity: LinkIdentity;
  /** PEM of the CA to pin (required for TLS). */
  caPem?: string | null;
  keepaliveS: number;
  connectTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  bootId: string;
  softwareVersion: string;
  /** Random source in [0, 1) for the jitter (tests pass a seeded one). */
  random?: () => number;
  log?: Logger;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}

/** Delay before reconnect attempt n (0-based): equal jitter over a doubling base, capped (shared/backoff.ts). */
export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return backoff(attempt, { initial: minMs, max: maxMs, jitter: 'equal', random });
}

/** Check the URL against the TLS rule; returns the mqtt.js TLS options. */
export function tlsOptionsFor(url: string, caPem: string | null | undefined): Partial<IClientOptions> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CallboxError(ErrorCode.ConfigInvalid, `mqtt.url: got ${JSON.stringify(url)}, expected a broker URL`);
  }
  const secure = parsed.protocol === 'mqtts:' || parsed.protocol === 'tls:' || parsed.protocol === 'wss:';
  if (!secure) {
    if (!isLoopbackHost(parsed.hostname)) {
      throw new CallboxError(
        ErrorCode.ConfigInvalid,
        `mqtt.url: got ${url}, expected mqtts:// (TLS) for a broker that is not on loopback: caller numbers must not cross a network in clear`,
      );
    }
    return {};
  }
  if (!caPem) {
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `mqtt.url ${url} uses TLS but no CA is pinned: set mqtt.caFile or provision the box (the fleet sends its CA)`,
    );
  }
  return { ca: caPem, rejectUnauthorized: true };
}

/** A broker URL as an mqtt.js server entry. */
function serverOf(url: string): { host: string; port: number; protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss' } {
  const u = new URL(url);
  const protocol = (u.protocol === 'tls:' ? 'mqtts' : u.protocol.slice(0, -1)) as 'mqtt' | 'mqtts' | 'ws' | 'wss';
  const port = u.port ? Number(u.port) : protocol === 'mqtts' ? 8883 : 1883;
  return { host: u.hostname, port, protocol };
}

export interface LinkEvents {
  state: [LinkState, string | undefined];
  online: [];
  offline: [];
  unauthorized: [number];
}

export class Link extends EventEmitter<LinkEvents> {
  private clientRef: MqttClient | undefined;
  private stateValue: LinkState = 'idle';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly log: Logger;
  readonly clientId: string;

  constructor(private readonly opts: LinkOptions) {
    super();
    this.log = opts.log ?? getLogger('device:uplink:link');
    this.clientId = opts.identity.kind === 'device' ? `callbox-${opts.identity.id}` : `claim-${opts.identity.id}`;
  }

  get state(): LinkState {
    return this.stateValue;
  }

  get client(): MqttClient {
    if (!this.clientRef) throw new CallboxError(ErrorCode.LinkDisconnected, 'the link was not started');
    return this.clientRef;
  }

  get online(): boolean {
    return this.stateValue === 'online';
  }

  private setState(s: LinkState, detail?: string): void {
    if (s === this.stateValue) return;
    this.stateValue = s;
    this.emit('state', s, detail);
  }

  private statusPayload(state: Status['state'], reason?: string): string {
    const s: Status = {
      v: 1,
      state,
      at: new Date().toISOString(),
      bootId: this.opts.bootId,
      softwareVersion: this.opts.softwareVersion,
    };
    if (reason) s.reason = reason;
    return JSON.stringify(s);
  }

  /** Every broker address, url first, each once. */
  get urls(): string[] {
    return [...new Set([this.opts.url, ...(this.opts.urls ?? [])])];
  }

  /** The broker the link is on (or last tried). */
  get currentUrl(): string {
    const o = this.clientRef?.options;
    return o?.host ? `${o.protocol}://${o.host}:${o.port}` : this.opts.url;
  }

  /** Connect; resolves at once (the link keeps trying in the background). */
  start(): void {
    const { identity } = this.opts;
    const urls = this.urls;
    const tls: Partial<IClientOptions> = Object.assign({}, ...urls.map((u) => tlsOptionsFor(u, this.opts.caPem)));
    const options: IClientOptions = {
      ...tls,
      // Several brokers: mqtt.js moves to the next one at every (re)connection attempt.
      ...(urls.length > 1 ? { servers: urls.map(serverOf) } : {}),
      protocolVersion: 4,
      clientId: this.clientId,
      username: identity.username,
      password: identity.password,
      clean: identity.kind !== 'device',
      keepalive: this.opts.keepaliveS,
      connectTimeout: this.opts.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: true,
      queueQoSZero: false,
    };
    if (identity.kind === 'device') {
      options.will = {
        topic: deviceTopics(identity.id).status,
        payload: Buffer.from(this.statusPayload('offline', 'will')),
        qos: 1,
        retain: true,
      };
    }
    this.setState('connecting');
    const client = mqtt.connect(this.opts.url, options);
    this.clientRef = client;
    client.on('connect', () => {
      this.attempt = 0;
      this.lastError = undefined;
      this.loggedReason = undefined;
      this.log.info({ url: this.currentUrl, clientId: this.clientId }, 'link online');
      if (identity.kind === 'device') {
        client.publish(deviceTopics(identity.id).status, this.statusPayload('online'), { qos: 1, retain: true });
      }
      this.setState('online');
      this.emit('online');
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      if (err.code === 4 || err.code === 5) {
        this.log.warn({ code: err.code, username: identity.username }, 'broker refused the credentials');
        this.setState('unauthorized', err.message);
        this.emit('unauthorized', err.code);
        this.clearReconnect();
        client.end(true);
        return;
      }
      this.lastError = err.message || String(err.code ?? 'error');
      this.log.debug({ err }, 'link error');
    });
    client.on('close', () => {
      const reason = this.lastError ?? 'the connection closed (no answer from the broker?)';
      this.lastError = undefined;
      if (this.stateValue === 'online') {
        if (!this.stopping) this.log.warn({ url: this.currentUrl, reason }, 'link lost');
        this.loggedReason = reason;
        this.setState('offline');
        this.emit('offline');
      } else if (!this.stopping && reason !== this.loggedReason) {
        // Why the broker cannot be reached, once per change of reason (not at every retry).
        this.loggedReason = reason;
        this.log.warn({ url: this.currentUrl, reason }, `cannot connect to the fleet broker: ${reason}`);
      }
      this.scheduleReconnect();
    });
  }

  private clearReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** The last reason a connection failed or closed, logged once per change. */
  private lastError: string | undefined;
  private loggedReason: string | undefined;

  private scheduleReconnect(): void {
    if (this.stopping || this.stateValue === 'unauthorized' || this.reconnectTimer) return;
    if (this.stateValue !== 'offline') this.setState('offline');
    const delay = backoffDelay(this.attempt++, this.opts.reconnectMinMs, this.opts.reconnectMaxMs, this.opts.random);
    this.log.debug({ delay, attempt: this.attempt }, 'reconnect scheduled');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopping || !this.clientRef) return;
      this.setState('connecting');
      this.clientRef.reconnect();
    }, delay);
  }

  /** Publish and resolve on the broker's acknowledgement (QoS 1) or at once (QoS 0). */
  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    const client = this.clientRef;
    if (!client || !this.online) {
      return Promise.reject(new CallboxError(ErrorCode.LinkDisconnected, `not connected: ${topic} not published`));
    }
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: opts.qos, retain: opts.retain ?? false }, (err) =>
        err
          ? reject(new CallboxError(ErrorCode.LinkDisconnected, `publish to ${topic} failed: ${err.message}`))
          : resolve(),
      );
    });
  }

  /** Publish a retained "offline" (shutdown) status, then disconnect. */
  async stop(reason = 'shutdown'): Promise<void> {
    this.stopping = true;
    this.clearReconnect();
    const client = this.clientRef;
    if (!client) {
      this.setState('stopped');
      return;
    }
    if (this.online && this.opts.identity.kind === 'device') {
      await Promise.race([
        this.publish(deviceTopics(this.opts.identity.id).status, this.statusPayload('offline', reason), {
          qos: 1,
          retain: true,
        }).catch(() => undefined),
        new Promise((r) => setTimeout(r, 2000)),
      ]);
    }
    // A graceful end waits for unacknowledged QoS 1 messages; a dead broker must not hold up a shutdown.
    const ended = await Promise.race([
      new Promise<boolean>((resolve) => client.end(false, {}, () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref()),
    ]);
    if (!ended) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    this.setState('stopped');
  }

  /** Drop the connection abruptly (tests, and before a reboot to avoid waiting on a dead socket). */
  async kill(): Promise<void> {
    this.stopping = true;
    this.clearReconnect();
    await new Promise<void>((resolve) => (this.clientRef ? this.clientRef.end(true, {}, () => resolve()) : resolve()));
    this.setState('stopped');
  }
}
