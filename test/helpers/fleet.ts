/** Start a fleet for a test: embedded broker on an ephemeral port, SQLite in a temp folder. */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { runCli } from '../../fleet/cli.js';
import { loadFleetConfig } from '../../fleet/config.js';
import { Fleet, type FleetOptions } from '../../fleet/fleet.js';
import { OpsClient } from '../../fleet/ops-client.js';
import type { ClaimResponse } from '../../shared/contract/messages.js';
import { claimTopics } from '../../shared/contract/topics.js';
import { newRequestId } from '../../shared/ids.js';

export interface TestFleet {
  fleet: Fleet;
  url: string;
  admin: OpsClient;
  adminPassword: string;
  dir: string;
  close(): Promise<void>;
}

export async function startTestFleet(
  values: Record<string, unknown> = {},
  opts: FleetOptions = {},
): Promise<TestFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'));
  const base = {
    mqtt: { port: 0, host: '127.0.0.1', reconnectMs: 100, ...((values.mqtt as object) ?? {}) },
    store: { sqlitePath: join(dir, 'fleet.db'), ...((values.store as object) ?? {}) },
    ingest: { flushMs: 2, ...((values.ingest as object) ?? {}) },
    presence: { ...((values.presence as object) ?? {}) },
    ops: { commandTimeoutMs: 2000, ...((values.ops as object) ?? {}) },
    http: { port: 0, ...((values.http as object) ?? {}) },
    alerts: { ...((values.alerts as object) ?? {}) },
    voicemail: { dir: join(dir, 'voicemail'), ...((values.voicemail as object) ?? {}) },
    updates: { dir: join(dir, 'releases'), ...((values.updates as object) ?? {}) },
    ...(values.patients ? { patients: values.patients } : {}),
  };
  const config = loadFleetConfig(undefined, base, {});
  let adminPassword = '';
  const fleet = await Fleet.start(config, {
    ...opts,
    onBootstrapAdmin: (_u, p) => {
      adminPassword = p;
    },
  });
  const url = fleet.brokerUrl;
  const admin = await OpsClient.connect(url, 'admin', adminPassword);
  return {
    fleet,
    url,
    admin,
    adminPassword,
    dir,
    close: async () => {
      await admin.close();
      await fleet.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// 10 s: CONNACK from a broker on a loaded 2-core machine has taken over 3 s (a refused login still answers at once).
export function connectClient(url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c));
    c.once('error', (e) => {
      c.end(true);
      reject(e);
    });
  });
}

/** A new box claiming with its label secret; resolves with the fleet's answer. */
export async function claim(url: string, serial: string, secret: string, timeoutMs = 3000): Promise<ClaimResponse> {
  const c = await connectClient(url, { username: `claim:${serial}`, password: secret });
  try {
    const t = claimTopics(serial);
    await c.subscribeAsync(t.res, { qos: 1 });
    const id = newRequestId();
    const answer = new Promise<ClaimResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no claim answer for ${serial}`)), timeoutMs);
      c.on('message', (_topic, payload) => {
        const a = JSON.parse(payload.toString()) as ClaimResponse;
        if (a.id === id) {
          clearTimeout(timer);
          resolve(a);
        }
      });
    });
    await c.publishAsync(t.req, JSON.stringify({ v: 1, id, serial, model: 'cb1', softwareVersion: '1.0.0' }), {
      qos: 1,
    });
    return await answer;
  } finally {
    c.end(true);
  }
}

/** Register a serial with its secret and claim it: the box's device credentials. */
export async function provisionBox(
  tf: TestFleet,
  serial: string,
): Promise<{ deviceId: string; username: string; password: string }> {
  const secret = `label-${serial}-secret`;
  await tf.admin.call('boxes.register', { serial, claimSecret: secret });
  const a = await claim(tf.url, serial, secret);
  if (a.state !== 'approved') throw new Error(`claim of ${serial} was ${a.state}`);
  return { deviceId: a.deviceId, username: a.username, password: a.password };
}

export async function closed(c: MqttClient, timeoutMs = 3000): Promise<boolean> {
  if (!c.connected) return true;
  const t = new Promise<false>((r) => setTimeout(() => r(false), timeoutMs));
  return Promise.race([once(c as unknown as NodeJS.EventEmitter, 'close').then(() => true as const), t]);
}

/** The QoS granted per filter (128: refused); mqtt.js rejects a SUBACK with a refusal, so read it from the error. */
export async function granted(c: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (e) {
    const packet = (e as { packet?: { granted?: (number | { qos: number })[] } }).packet;
    if (!packet?.granted) throw e;
    return packet.granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

/** The `fleet` CLI run in this process against a fleet at `url` (as `--url url ...args`), its output collected. */
export async function runFleetCli(
  url: string,
  args: string[],
  password: string,
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(['--url', url, ...args], {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    env: { CALLBOX_OPS_PASSWORD: password },
  });
  return { code, out, err };
}
