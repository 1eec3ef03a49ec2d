/**
 * The fleet web server's live stream (server-sent events: presence, events, alerts; resumed with
 * Last-Event-ID or told to reset; a clinic user sees its clinic only), /metrics in the Prometheus format
 * and /health (503 naming the part that is down), over real HTTP against a running fleet.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertsFeature } from '../../fleet/alerts/feature.js';
import type { Clinic } from '../../fleet/store/types.js';
import { type WebFeature, webFeature } from '../../fleet/web/server.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newBootId, newEventId } from '../../shared/ids.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { openSse, signIn, type WebSession } from '../helpers/web.js';

describe('fleet web server: live stream, metrics, health', () => {
  let tf: TestFleet;
  let base: string;
  let north: Clinic;
  let south: Clinic;
  let a: { deviceId: string; username: string; password: string };
  let b: { deviceId: string; username: string; password: string };
  let admin: WebSession;
  let nora: WebSession;
  const clients: MqttClient[] = [];
  const bootA = newBootId();
  let seqA = 0;

  const sendEvent = async (c: MqttClient, deviceId: string, seq: number, bootId: string) => {
    await c.publishAsync(
      deviceTopics(deviceId).events,
      JSON.stringify({
        v: 1,
        id: newEventId(),
        deviceId,
        bootId,
        seq,
        at: new Date().toISOString(),
        type: 'call.incoming',
        body: {
          callId: newEventId(),
          number: '+15551234567',
          withheld: false,
          inHours: true,
          repeatCaller: false,
          waiting: false,
        },
      }),
      { qos: 1 },
    );
  };

  beforeAll(async () => {
    tf = await startTestFleet({ http: { liveBuffer: 10 } }, { features: [webFeature(), alertsFeature()] });
    base = (tf.fleet.feature<WebFeature>('web') as WebFeature).url;
    const clinic = (name: string) =>
      tf.fleet.store.createClinic({
        organisationId: null,
        name,
        timezone: 'UTC',
        phoneNumbers: [],
        answeringService: null,
        contacts: [],
      });
    north = await clinic('North');
    south = await clinic('South');
    a = await provisionBox(tf, 'LIVE-A01');
    b = await provisionBox(tf, 'LIVE-B01');
    await tf.admin.call('boxes.assign', { box: 'LIVE-A01', clinicId: north.id });
    await tf.admin.call('boxes.assign', { box: 'LIVE-B01', clinicId: south.id });
    const made = await tf.admin.call('users.create', { name: 'nora', role: 'clinic', clinic: 'North' });
    admin = await signIn(base, 'admin', tf.adminPassword);
    nora = await signIn(base, 'nora', made.password);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await tf?.close();
  });

  it('streams presence and stored events (no caller numbers), each with an id; a clinic user gets its own', async () => {
    const all = await openSse(base, '/api/v1/live', admin.cookie);
    const mine = await openSse(base, '/api/v1/live', nora.cookie);
    try {
      expect(all.status).toBe(200);
      expect(all.contentType).toMatch(/^text\/event-stream/);
      const ca = await connectClient(tf.url, a);
      const cb = await connectClient(tf.url, b);
      clients.push(ca, cb);
      await sendEvent(ca, a.deviceId, ++seqA, bootA);
      await sendEvent(cb, b.deviceId, 1, newBootId());
      const online = await all.waitFor(
        (m) => m.event === 'presence' && (m.data as { deviceId: string }).deviceId === b.deviceId,
        'box B online',
      );
      expect(online.id).toMatch(/^[0-9a-z]+\.\d+$/);
      expect(online.data).toMatchObject({ serial: 'LIVE-B01', online: true, clinicId: south.id });
      expect(typeof (online.data as { lastSeen: string }).lastSeen).toBe('string');
      const ev = await all.waitFor(
        (m) => m.event === 'event' && (m.data as { deviceId: string }).deviceId === a.deviceId,
        'box A event',
      );
      expect(ev.data).toMatchObject({ type: 'call.incoming', seq: 1 });
      expect(JSON.stringify(all.messages)).not.toContain('+1555');
      await all.waitFor(
        (m) => m.event === 'event' && (m.data as { deviceId: string }).deviceId === b.deviceId,
        'box B event',
      );
      await mine.waitFor(
        (m) => m.event === 'event' && (m.data as { deviceId: string }).deviceId === a.deviceId,
        'box A event for the North clinic user',
      );
      expect(mine.messages.some((m) => JSON.stringify(m.data).includes(b.deviceId))).toBe(false);
    } finally {
      await all.close();
      await mine.close();
    }
  });

  it('resumes after a reconnect with Last-Event-ID, or says reset when the ring no longer has it', async () => {
    const first = await openSse(base, '/api/v1/live', admin.cookie);
    const ca = clients[0] as MqttClient;
    await sendEvent(ca, a.deviceId, ++seqA, bootA);
    const seen = await first.waitFor(
      (m) => m.event === 'event' && (m.data as { seq: number }).seq === seqA,
      'an event before the disconnect',
    );
    await first.close();
    const missedSeq = ++seqA;
    await sendEvent(ca, a.deviceId, missedSeq, bootA);
    await expect.poll(async () => (await tf.fleet.store.listEvents({ deviceId: a.deviceId })).length).toBe(seqA);
    const again = await openSse(base, '/api/v1/live', admin.cookie, seen.id);
    try {
      await again.waitFor(
        (m) => m.event === 'event' && (m.data as { seq: number }).seq === missedSeq,
        'the event sent while away',
      );
    } finally {
      await again.close();
    }
    // More than the ring keeps (http.liveBuffer: 10) since then: reset.
    for (let i = 0; i < 12; i++) await sendEvent(ca, a.deviceId, ++seqA, bootA);
    await expect
      .poll(async () => (await tf.fleet.store.listEvents({ deviceId: a.deviceId, limit: 100 })).length)
      .toBe(seqA);
    const late = await openSse(base, '/api/v1/live', admin.cookie, seen.id);
    try {
      await late.waitFor((m) => m.event === 'reset', 'a reset');
    } finally {
      await late.close();
    }
    const stranger = await openSse(base, '/api/v1/live', admin.cookie, 'xyz.1');
    try {
      await stranger.waitFor((m) => m.event === 'reset', 'a reset for an id of another run');
    } finally {
      await stranger.close();
    }
  });

  it('ends a stream when its session ends (sign-out)', async () => {
    const s = await signIn(base, 'admin', tf.adminPassword);
    const stream = await openSse(base, '/api/v1/live', s.cookie);
    try {
      expect(stream.status).toBe(200);
      expect((await s.del('/api/session')).status).toBe(204);
      await expect.poll(() => stream.ended(), { timeout: 5000 }).toBe(true);
    } finally {
      await stream.close();
    }
  });

  it('serves /metrics in the Prometheus format with the fleet figures', async () => {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    const value = (name: string) => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    expect(value('callbox_boxes_online')).toBe(2);
    expect(value('callbox_events_ingested_total')).toBeGreaterThan(0);
    expect(value('callbox_ingest_latency_seconds_count')).toBeGreaterThan(0);
    for (const name of [
      'callbox_ingest_queue_events',
      'callbox_box_outbox_events',
      'callbox_broker_queue_messages',
      'callbox_broker_refusals',
      'callbox_alerts',
      'callbox_alert_deliveries_failed',
      'process_cpu_user_seconds_total',
    ]) {
      expect(value(name), name).toBeDefined();
    }
  });

  it('says ready on /health, and 503 naming the broker when the fleet lost it', async () => {
    const ok = await fetch(`${base}/health`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ready', store: { ok: true }, broker: { ok: true } });
    await tf.fleet.broker?.stop();
    await expect.poll(async () => (await fetch(`${base}/health`)).status, { timeout: 10_000 }).toBe(503);
    const down = (await (await fetch(`${base}/health`)).json()) as { broker: { ok: boolean; detail: string } };
    expect(down).toMatchObject({ status: 'unavailable', store: { ok: true }, broker: { ok: false } });
    expect(down.broker.detail).toMatch(/broker/);
  });
});
