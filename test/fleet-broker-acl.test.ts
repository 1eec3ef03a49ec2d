/**
 * The embedded broker lets each identity in as itself and nothing else,
 * checked with real clients: mqtt.js and Debian's mosquitto_pub/mosquitto_sub.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopics } from '../shared/contract/topics.js';
import {
  claim,
  closed,
  connectClient,
  granted,
  provisionBox,
  startTestFleet,
  type TestFleet,
} from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

const run = promisify(execFile);

async function mosquitto(
  bin: 'mosquitto_pub' | 'mosquitto_sub',
  args: string[],
): Promise<{ code: number; out: string }> {
  try {
    const r = await run(bin, args, { timeout: 8000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: (err.stdout ?? '') + (err.stderr ?? '') };
  }
}

describe('embedded broker ACL', () => {
  let tf: TestFleet;
  let port: number;
  let a: { deviceId: string; username: string; password: string };
  let b: { deviceId: string; username: string; password: string };

  beforeAll(async () => {
    tf = await startTestFleet();
    port = Number(new URL(tf.url).port);
    a = await provisionBox(tf, 'ACL-A001');
    b = await provisionBox(tf, 'ACL-B001');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('lets a box publish its own events, which are stored', async () => {
    const c = await connectClient(tf.url, { username: a.username, password: a.password });
    const e = sampleEvent(a.deviceId, 1);
    await c.publishAsync(deviceTopics(a.deviceId).events, JSON.stringify(e), { qos: 1 });
    await expect.poll(async () => (await tf.fleet.store.listEvents({ deviceId: a.deviceId })).length).toBe(1);
    c.end(true);
  });

  it('disconnects box A publishing as box B and stores nothing', async () => {
    const c = await connectClient(tf.url, { username: a.username, password: a.password });
    const e = sampleEvent(b.deviceId, 1);
    c.publish(deviceTopics(b.deviceId).events, JSON.stringify(e), { qos: 1 });
    expect(await closed(c)).toBe(true);
    await tf.fleet.ingest.drain();
    expect(await tf.fleet.store.countEvents({ deviceId: b.deviceId })).toBe(0);
    c.end(true);
  });

  it("refuses box A's subscriptions to B's subtree, to # and to $SYS", async () => {
    const c = await connectClient(tf.url, { username: a.username, password: a.password });
    const refused = await granted(c, [
      deviceTopics(b.deviceId).configDesired,
      deviceTopics(b.deviceId).cmdReq,
      '#',
      '$SYS/#',
      'callbox/v1/+/events',
    ]);
    expect(refused).toEqual([128, 128, 128, 128, 128]);
    expect(await granted(c, [deviceTopics(a.deviceId).configDesired])).toEqual([1]);
    c.end(true);
  });

  it('refuses a wrong password and an unknown device', async () => {
    await expect(connectClient(tf.url, { username: a.username, password: 'wrong-password-123' })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    await expect(connectClient(tf.url, { username: 'cb-nobody', password: 'x'.repeat(20) })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
  });

  it('keeps one session per box: another box cannot take over its client id', async () => {
    const ca = await connectClient(tf.url, { username: a.username, password: a.password, clientId: 'shared-id' });
    const cb = await connectClient(tf.url, { username: b.username, password: b.password, clientId: 'shared-id' });
    await new Promise((r) => setTimeout(r, 200));
    expect(ca.connected).toBe(true);
    expect(cb.connected).toBe(true);
    ca.end(true);
    cb.end(true);
  });

  it('lets the claim credential only ask to be provisioned', async () => {
    const secret = 'label-ACL-C001-secret';
    await tf.admin.call('boxes.register', { serial: 'ACL-C001', claimSecret: secret });
    const c = await connectClient(tf.url, { username: 'claim:ACL-C001', password: secret });
    const subs = await granted(c, [
      'callbox/v1/_claim/ACL-C001/res',
      'callbox/v1/_claim/ACL-A001/res',
      deviceTopics(a.deviceId).configDesired,
    ]);
    expect(subs).toEqual([1, 128, 128]);
    c.publish(deviceTopics(a.deviceId).events, JSON.stringify(sampleEvent(a.deviceId, 2)), { qos: 1 });
    expect(await closed(c)).toBe(true);
    await expect(connectClient(tf.url, { username: 'claim:ACL-C001', password: 'not-the-label' })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
  });

  it('disconnects a decommissioned box at once and refuses it afterwards', async () => {
    const d = await provisionBox(tf, 'ACL-D001');
    const c = await connectClient(tf.url, { username: d.username, password: d.password });
    const started = Date.now();
    await tf.admin.call('boxes.decommission', { box: 'ACL-D001', reason: 'returned to vendor' });
    expect(await closed(c, 2000)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(connectClient(tf.url, { username: d.username, password: d.password })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    // its claim secret is revoked too: it cannot get new credentials
    await expect(claim(tf.url, 'ACL-D001', 'label-ACL-D001-secret')).rejects.toThrow();
    const audit = await tf.admin.call('audit.list', { target: 'box:ACL-D001' });
    expect(audit[0]).toMatchObject({ actor: 'ops:admin', action: 'boxes.decommission' });
  });

  it('holds with mosquitto_pub and mosquitto_sub', async () => {
    const common = ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-V', 'mqttv311'];
    const own = await mosquitto('mosquitto_pub', [
      ...common,
      '-u',
      a.username,
      '-P',
      a.password,
      '-t',
      deviceTopics(a.deviceId).events,
      '-m',
      JSON.stringify(sampleEvent(a.deviceId, 3)),
    ]);
    expect(own.code).toBe(0);
    await expect.poll(async () => tf.fleet.store.countEvents({ deviceId: a.deviceId })).toBe(2);

    const wrong = await mosquitto('mosquitto_pub', [
      ...common,
      '-u',
      a.username,
      '-P',
      'wrong-password-123',
      '-t',
      deviceTopics(a.deviceId).events,
      '-m',
      '{}',
    ]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/not authori[sz]ed|bad user/i);

    for (const topic of ['#', '$SYS/#', `${deviceTopics(b.deviceId).root}/#`, deviceTopics(b.deviceId).cmdReq]) {
      const sub = await mosquitto('mosquitto_sub', [
        ...common,
        '-u',
        a.username,
        '-P',
        a.password,
        '-t',
        topic,
        '-W',
        '2',
        '-C',
        '1',
      ]);
      expect(sub.out, topic).toMatch(/denied/i);
    }

    const asB = await mosquitto('mosquitto_pub', [
      ...common,
      '-u',
      a.username,
      '-P',
      a.password,
      '-t',
      deviceTopics(b.deviceId).events,
      '-m',
      JSON.stringify(sampleEvent(b.deviceId, 1)),
    ]);
    await tf.fleet.ingest.drain();
    expect(asB.code).not.toBe(0);
    expect(await tf.fleet.store.countEvents({ deviceId: b.deviceId })).toBe(0);
  });
});
