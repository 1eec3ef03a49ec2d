/**
 * Test-side stand-ins for the uplink tests: a real aedes broker on an
 * ephemeral TCP port (that can be taken down and brought back on the same
 * port to simulate an outage), a Mosquitto started on its own port and
 * config file, and a "fake fleet" MQTT client that plays the fleet's part
 * of the shared contract.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes, type AuthenticateError } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { type DecodedBatch, decodeEventsPayload, ReceiptWatermarks } from '../shared/contract/delivery.js';
import type { AnyEvent } from '../shared/contract/events.js';
import { ClaimRequestSchema, type ConfigDesired } from '../shared/contract/messages.js';
import { DEVICE_COMMANDS, FLEET_REQUESTS } from '../shared/contract/rpc.js';
import { claimTopics, deviceTopics, FLEET_SUBSCRIPTIONS, parseTopic } from '../shared/contract/topics.js';
import { getLogger } from '../shared/log.js';
import { RpcRequester, RpcResponder } from '../shared/rpc.js';
import { decodePayload } from '../shared/validate.js';
import { waitFor } from '../shared/wait.js';

export interface TestBroker {
  port: number;
  url: string;
  /** A second listener for the fake fleet that down() leaves alone (the box's network fails, not the fleet's). */
  fleetUrl: string;
  broker: Aedes;
  /** Stop accepting and drop every connection (the broker keeps its sessions). */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
  /** username -> password; when set, other credentials are refused (CONNACK 4). */
  accounts: Map<string, string> | undefined;
}

export async function startBroker(): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const fleetServer = net.createServer((sock) => broker.handle(sock));
  await new Promise<void>((r) => fleetServer.listen(0, '127.0.0.1', () => r()));
  const tb: TestBroker = {
    port: 0,
    url: '',
    fleetUrl: `mqtt://127.0.0.1:${(fleetServer.address() as net.AddressInfo).port}`,
    broker,
    accounts: undefined,
    async down() {
      const s = server;
      server = undefined;
      for (const sock of sockets) sock.destroy();
      sockets.clear();
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
    async up() {
      const s = net.createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        broker.handle(sock);
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      server = s;
      port = (s.address() as net.AddressInfo).port;
      tb.port = port;
      tb.url = `mqtt://127.0.0.1:${port}`;
    },
    async close() {
      await tb.down();
      fleetServer.close();
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
  broker.authenticate = (_client, username, password, done) => {
    if (!tb.accounts) return done(null, true);
    const ok = username !== undefined && tb.accounts.get(username) === password?.toString();
    if (ok) return done(null, true);
    const err = new Error('bad username or password') as AuthenticateError;
    err.returnCode = 4;
    done(err, false);
  };
  await tb.up();
  return tb;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface TestMosquitto {
  port: number;
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A Mosquitto of the test's own on an ephemeral port, with persistence in a temp dir (and TLS if given). */
export async function startMosquitto(tls?: {
  caFile: string;
  certFile: string;
  keyFile: string;
}): Promise<TestMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'callbox-mosq-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...(tls ? [`cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`] : []),
      'allow_anonymous true',
      // Running as root (CI containers), mosquitto would drop to user "mosquitto", who cannot read the temp dir.
      'user root',
      'persistence true',
      `persistence_location ${dir}/`,
      'autosave_interval 1',
      'max_queued_messages 200000',
      'max_inflight_messages 100',
      '',
    ].join('\n'),
  );
  let proc: ChildProcess | undefined;
  const m: TestMosquitto = {
    port,
    url: tls ? `mqtts://localhost:${port}` : `mqtt://127.0.0.1:${port}`,
    async start() {
      proc = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
      const accepts = () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(false));
        });
      await waitFor(accepts, `mosquitto listening on ${port}`, { timeoutMs: 10_000, intervalMs: 50 });
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      });
    },
  };
  await m.start();
  return m;
}

export function connectClient(url: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 200, ...opts });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/**
 * Receives events as the fleet does: batches or single events, deduplicated
 * by id, with the order of first arrival per device. Returns the batch (to
 * receipt) when the message was one.
 */
export class FleetEvents {
  readonly byDevice = new Map<string, AnyEvent[]>();
  readonly seen = new Set<string>();
  duplicates = 0;
  invalid = 0;
  messages = 0;

  onMessage = (topic: string, payload: Buffer): DecodedBatch | undefined => {
    const p = parseTopic(topic);
    if (p?.key !== 'events') return undefined;
    let events: AnyEvent[];
    let batch: DecodedBatch | undefined;
    try {
      const d = decodeEventsPayload(payload);
      if (d.kind === 'batch') {
        batch = d.batch;
        events = d.batch.events;
        this.invalid += d.batch.rejected.length;
      } else events = [d.event];
    } catch {
      this.invalid++;
      return undefined;
    }
    this.messages++;
    for (const e of events) {
      if (this.seen.has(e.id)) {
        this.duplicates++;
        continue;
      }
      this.seen.add(e.id);
      let list = this.byDevice.get(e.deviceId);
      if (!list) {
        list = [];
        this.byDevice.set(e.deviceId, list);
      }
      list.push(e);
    }
    return batch;
  };

  count(): number {
    return this.seen.size;
  }

  async waitFor(pred: () => boolean, timeoutMs = 20_000, what = 'events'): Promise<void> {
    await waitFor(pred, what, timeoutMs).catch((e: Error) => {
      throw new Error(`${e.message} (have ${this.count()})`);
    });
  }
}

/**
 * The fleet's role for the device tests: events in, claims answered,
 * desired configuration published (retained) and served by config.get,
 * commands sent.
 */
export class FakeFleet {
  readonly events = new FleetEvents();
  /** Receipt what arrives (as the fleet does after its commit); false: the fleet "never stores" (tests). */
  receipts = true;
  receiptsSent = 0;
  private readonly marks = new ReceiptWatermarks();
  readonly reported: { deviceId: string; report: Record<string, unknown> }[] = [];
  readonly statuses: { deviceId: string; status: Record<string, unknown> }[] = [];
  readonly telemetry: { deviceId: string; t: Record<string, unknown> }[] = [];
  readonly desired = new Map<string, ConfigDesired>();
  /** What the fleet answers a claim with (serial -> approval); absent: pending. */
  readonly approvals = new Map<string, { deviceId: string; password: string; caPem?: string | null }>();
  /** config.get requests seen; the next `dropConfigGets` of them get no answer (a fleet going down). */
  configGets = 0;
  dropConfigGets = 0;
  /** Claim requests seen (each answered). */
  claimRequests = 0;
  private responder: RpcResponder<typeof FLEET_REQUESTS> | undefined;
  private requester: RpcRequester<typeof DEVICE_COMMANDS> | undefined;

  private constructor(readonly client: MqttClient) {}

  static async start(url: string, clientId = 'fake-fleet', opts: mqtt.IClientOptions = {}): Promise<FakeFleet> {
    const client = await connectClient(url, { clientId, clean: false, username: 'fleet:core', password: 'x', ...opts });
    const f = new FakeFleet(client);
    client.on('message', (topic, payload) => f.onMessage(topic, payload));
    await client.subscribeAsync(
      [
        FLEET_SUBSCRIPTIONS.events,
        FLEET_SUBSCRIPTIONS.status,
        FLEET_SUBSCRIPTIONS.configReported,
        FLEET_SUBSCRIPTIONS.claimReq,
        FLEET_SUBSCRIPTIONS.telemetry,
      ],
      { qos: 1 },
    );
    f.responder = new RpcResponder(
      client,
      FLEET_REQUESTS,
      {
        'config.get': (_p, ctx) => {
          f.configGets++;
          if (f.dropConfigGets > 0) {
            f.dropConfigGets--;
            return new Promise(() => undefined);
          }
          const deviceId = parseTopic(ctx.topic)?.deviceId ?? '';
          return f.desired.get(deviceId) ?? null;
        },
      },
      { requestFilter: FLEET_SUBSCRIPTIONS.fleetReq },
    );
    await f.responder.start();
    f.requester = new RpcRequester(client, DEVICE_COMMANDS, {
      responseFilter: FLEET_SUBSCRIPTIONS.cmdRes,
      defaultTimeoutMs: 5000,
      expires: true,
      log: getLogger('test:fake-fleet'),
    });
    await f.requester.start();
    return f;
  }

  get commands(): RpcRequester<typeof DEVICE_COMMANDS> {
    if (!this.requester) throw new Error('not started');
    return this.requester;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const p = parseTopic(topic);
    if (!p) return;
    if (p.key === 'events') {
      const b = this.events.onMessage(topic, payload);
      if (b && this.receipts && p.deviceId) {
        const seq = this.marks.committed(b);
        this.receiptsSent++;
        this.client.publish(
          deviceTopics(p.deviceId).receipt,
          JSON.stringify({ v: 1, stream: b.stream, seq, at: new Date().toISOString() }),
          { qos: 1 },
        );
      }
    } else if (p.key === 'configReported' && p.deviceId) {
      this.reported.push({ deviceId: p.deviceId, report: JSON.parse(payload.toString()) });
    } else if (p.key === 'status' && p.deviceId && payload.length > 0) {
      this.statuses.push({ deviceId: p.deviceId, status: JSON.parse(payload.toString()) });
    } else if (p.key === 'telemetry' && p.deviceId) {
      this.telemetry.push({ deviceId: p.deviceId, t: JSON.parse(payload.toString()) });
    } else if (p.key === 'claimReq' && p.serial) {
      const req = decodePayload(ClaimRequestSchema, payload, 'claim request');
      this.claimRequests++;
      const a = this.approvals.get(p.serial);
      const res = a
        ? {
            v: 1,
            id: req.id,
            state: 'approved',
            deviceId: a.deviceId,
            username: a.deviceId,
            password: a.password,
            caPem: a.caPem ?? null,
            brokerUrl: null,
          }
        : { v: 1, id: req.id, state: 'pending', reason: 'waiting for an operator to approve' };
      this.client.publish(claimTopics(p.serial).res, JSON.stringify(res), { qos: 1 });
    }
  }

  /** Publish desired configuration (retained), as ops changing a setting. */
  async setDesired(deviceId: string, desired: ConfigDesired | Record<string, unknown>, raw?: string): Promise<void> {
    this.desired.set(deviceId, desired as ConfigDesired);
    await this.client.publishAsync(deviceTopics(deviceId).configDesired, raw ?? JSON.stringify(desired), {
      qos: 1,
      retain: true,
    });
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    await waitFor(pred, what, timeoutMs);
  }

  async close(): Promise<void> {
    this.requester?.stop();
    await this.client.endAsync(true);
  }
}

/** A throwaway CA and a server certificate for localhost/127.0.0.1 (openssl). */
export function makeCertificates(dir: string, name = 'ca'): { caFile: string; certFile: string; keyFile: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=callbox test ${name}`,
  ]);
  run(['req', ...ec, '-keyout', `${name}-server.key`, '-out', `${name}-server.csr`, '-subj', '/CN=localhost']);
  writeFileSync(join(dir, `${name}-san.ext`), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run([
    'x509',
    '-req',
    '-in',
    `${name}-server.csr`,
    '-CA',
    `${name}.pem`,
    '-CAkey',
    `${name}.key`,
    '-CAcreateserial',
    '-out',
    `${name}-server.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}-san.ext`,
  ]);
  return {
    caFile: join(dir, `${name}.pem`),
    certFile: join(dir, `${name}-server.pem`),
    keyFile: join(dir, `${name}-server.key`),
  };
}
