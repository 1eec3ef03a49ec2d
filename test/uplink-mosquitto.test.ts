/**
 * The link and outbox against Mosquitto (the external broker at scale),
 * started by the test on its own port and config: a broker restart in the
 * middle of the flow, and TLS with a pinned CA (a server certificate from
 * another CA is refused).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../device/store/store.js';
import { Link } from '../device/uplink/link.js';
import { UPLINK_MIGRATIONS } from '../device/uplink/migrations.js';
import { Outbox } from '../device/uplink/outbox.js';
import { wireOutbox } from '../device/uplink/wire.js';
import { newBootId } from '../shared/ids.js';
import { waitFor } from '../shared/wait.js';
import { FakeFleet, makeCertificates, startMosquitto } from './uplink-helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const call = (n: number) => ({
  callId: `m${n}`,
  number: null,
  withheld: true,
  inHours: false,
  repeatCaller: false,
  waiting: false,
});

async function box(url: string, deviceId: string, caPem?: string) {
  const store = await Store.open({
    file: join(mkdtempSync(join(tmpdir(), 'callbox-mq-')), 'box.db'),
    migrations: { uplink: UPLINK_MIGRATIONS },
  });
  cleanups.push(() => store.close());
  const outbox = new Outbox(store, { bootId: newBootId(), maxEvents: 100_000, publishBatch: 50, minFreeBytes: 1 });
  await outbox.open();
  const link = new Link({
    url,
    caPem: caPem ?? null,
    identity: { kind: 'device', id: deviceId, username: deviceId, password: 'mosquitto-anonymous-ok' },
    keepaliveS: 5,
    connectTimeoutMs: 2000,
    reconnectMinMs: 50,
    reconnectMaxMs: 300,
    bootId: newBootId(),
    softwareVersion: 'test',
  });
  wireOutbox(link, outbox, deviceId);
  cleanups.push(() => link.stop());
  return { outbox, link };
}

describe('uplink against Mosquitto', () => {
  it('a broker restart mid-flow: every event arrives, in order, and the retained status says online', async () => {
    const mosq = await startMosquitto();
    cleanups.push(() => mosq.stop());
    const fleet = await FakeFleet.start(mosq.url, 'fleet-mosq');
    cleanups.push(() => fleet.close());
    const { outbox, link } = await box(mosq.url, 'mosq-box');
    link.start();
    for (let i = 0; i < 200; i++) void outbox.record('call.incoming', call(i));
    await fleet.events.waitFor(() => fleet.events.count() >= 50);
    await mosq.stop();
    await Promise.all(Array.from({ length: 300 }, (_, i) => outbox.record('call.incoming', call(200 + i))));
    await mosq.start();
    await fleet.events.waitFor(() => fleet.events.count() === 500, 20_000);
    const seqs = (fleet.events.byDevice.get('mosq-box') ?? []).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    await outbox.drained();
    expect(outbox.depth).toBe(0);
    expect(fleet.statuses.filter((s) => s.deviceId === 'mosq-box').at(-1)?.status.state).toBe('online');
  });

  it('TLS with the pinned CA connects; a broker certificate from another CA is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callbox-tls-'));
    const good = makeCertificates(dir, 'fleet');
    const other = makeCertificates(dir, 'other');
    const mosq = await startMosquitto(good);
    cleanups.push(() => mosq.stop());
    const fleet = await FakeFleet.start(mosq.url, 'fleet-tls', { ca: readFileSync(good.caFile, 'utf8') });
    cleanups.push(() => fleet.close());
    const trusted = await box(mosq.url, 'tls-box', readFileSync(good.caFile, 'utf8'));
    trusted.link.start();
    await trusted.outbox.record('call.incoming', call(1));
    await trusted.outbox.drained(); // receipted by the fleet over TLS
    expect(trusted.link.state).toBe('online');
    const impostor = await box(mosq.url, 'tls-box-2', readFileSync(other.caFile, 'utf8'));
    const states: string[] = [];
    impostor.link.on('state', (s) => states.push(s));
    impostor.link.start();
    await waitFor(() => states.includes('offline'), 'the first attempt to fail (TLS: unknown CA)');
    expect(states).not.toContain('online');
    expect(impostor.link.online).toBe(false);
    expect(() => new Link({ ...linkDefaults, url: 'mqtt://fleet.example.net:1883' }).start()).toThrow(
      /expected mqtts:\/\/ \(TLS\) for a broker that is not on loopback/,
    );
    expect(() => new Link({ ...linkDefaults, url: 'mqtts://fleet.example.net:8883' }).start()).toThrow(
      /no CA is pinned/,
    );
  });
});

const linkDefaults = {
  identity: { kind: 'device' as const, id: 'x-box', username: 'x-box', password: 'p' },
  keepaliveS: 5,
  connectTimeoutMs: 1000,
  reconnectMinMs: 100,
  reconnectMaxMs: 1000,
  bootId: newBootId(),
  softwareVersion: 't',
};
