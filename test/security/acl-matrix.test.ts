/**
 * The ACL matrix, kept as a regression: every identity tried against every
 * topic it must not touch, with mqtt.js and with Debian's mosquitto_pub and
 * mosquitto_sub. Cross-box publish and subscribe, "#", "$SYS/#", wildcards,
 * the claim identity's scope, an ops user's scope, wrong and empty
 * passwords, and session takeover by client id.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTopics, deviceTopics, opsTopics } from '../../shared/contract/topics.js';
import { closed, connectClient, granted, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { sampleEvent } from '../helpers/store-conformance.js';
import { recordAttack } from './attacks.js';
import { opsUser } from './helpers.js';

const run = promisify(execFile);

async function mosquittoSub(port: number, user: string, password: string, topic: string): Promise<string> {
  try {
    const r = await run(
      'mosquitto_sub',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-V',
        'mqttv311',
        '-u',
        user,
        '-P',
        password,
        '-t',
        topic,
        '-W',
        '2',
        '-C',
        '1',
      ],
      { timeout: 8000 },
    );
    return r.stdout + r.stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return (err.stdout ?? '') + (err.stderr ?? '');
  }
}

async function mosquittoPub(port: number, user: string, password: string, topic: string, msg: string): Promise<number> {
  try {
    await run(
      'mosquitto_pub',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-V',
        'mqttv311',
        '-q',
        '1',
        '-u',
        user,
        '-P',
        password,
        '-t',
        topic,
        '-m',
        msg,
      ],
      { timeout: 8000 },
    );
    return 0;
  } catch (e) {
    return typeof (e as { code?: unknown }).code === 'number' ? ((e as { code: number }).code as number) : 1;
  }
}

describe('security: the ACL matrix (regression)', () => {
  let tf: TestFleet;
  let port: number;
  let a: { deviceId: string; username: string; password: string };
  let b: { deviceId: string; username: string; password: string };
  let viewer: { username: string; password: string };
  beforeAll(async () => {
    tf = await startTestFleet();
    port = Number(new URL(tf.url).port);
    a = await provisionBox(tf, 'MTX-A001');
    b = await provisionBox(tf, 'MTX-B001');
    viewer = await opsUser(tf, 'mtxviewer', 'viewer');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('refuses every cross-identity subscribe (mqtt.js and mosquitto_sub)', async () => {
    const tb = deviceTopics(b.deviceId);
    const filters = [
      tb.configDesired,
      tb.cmdReq,
      tb.fleetRes,
      tb.voicemailAck,
      tb.events,
      `${tb.root}/#`,
      '#',
      '$SYS/#',
      'callbox/v1/+/events',
      'callbox/v1/+/config/desired',
      claimTopics('MTX-B001').res,
      opsTopics('admin').res,
    ];
    const asBox = await connectClient(tf.url, { username: a.username, password: a.password });
    const boxGrants = await granted(asBox, filters);
    asBox.end(true);
    expect(boxGrants).toEqual(filters.map(() => 128));
    const asViewer = await connectClient(tf.url, viewer);
    const viewerGrants = await granted(asViewer, [...filters, deviceTopics(a.deviceId).events]);
    asViewer.end(true);
    expect(viewerGrants).toEqual([...filters, 'x'].map(() => 128));
    let denied = 0;
    for (const f of ['#', '$SYS/#', `${tb.root}/#`, tb.cmdReq]) {
      const out = await mosquittoSub(port, a.username, a.password, f);
      expect(out, f).toMatch(/denied/i);
      denied++;
    }
    const attempts = filters.length * 2 + 1 + 4;
    recordAttack({ item: 0, attack: 'ACL: subscribe outside own scope (box, viewer)', attempts, refused: attempts });
    expect(denied).toBe(4);
  });

  it('refuses every cross-identity publish and stores nothing from it', async () => {
    const tb = deviceTopics(b.deviceId);
    const attempts: { who: { username: string; password: string }; topic: string; payload: string }[] = [
      { who: a, topic: tb.events, payload: JSON.stringify(sampleEvent(b.deviceId, 1)) },
      { who: a, topic: tb.status, payload: '{"v":1,"state":"offline"}' },
      { who: a, topic: tb.configDesired, payload: '{}' },
      { who: a, topic: deviceTopics(a.deviceId).cmdReq, payload: '{}' },
      { who: a, topic: '$SYS/broker/x', payload: 'x' },
      { who: a, topic: opsTopics('admin').req, payload: '{}' },
      { who: viewer, topic: tb.events, payload: JSON.stringify(sampleEvent(b.deviceId, 2)) },
      { who: viewer, topic: tb.cmdReq, payload: '{}' },
      { who: viewer, topic: opsTopics('admin').req, payload: '{}' },
    ];
    let refused = 0;
    for (const at of attempts) {
      const c = await connectClient(tf.url, at.who);
      c.publish(at.topic, at.payload, { qos: 1 });
      expect(await closed(c), `${at.who.username} -> ${at.topic}`).toBe(true);
      c.end(true);
      refused++;
    }
    const code = await mosquittoPub(
      port,
      a.username,
      a.password,
      tb.events,
      JSON.stringify(sampleEvent(b.deviceId, 3)),
    );
    expect(code).not.toBe(0);
    refused++;
    await tf.fleet.ingest.drain();
    expect(await tf.fleet.store.countEvents({ deviceId: b.deviceId })).toBe(0);
    recordAttack({ item: 0, attack: 'ACL: publish outside own scope', attempts: attempts.length + 1, refused });
  });

  it('holds the claim identity to its own request and answer', async () => {
    const secret = 'label-MTX-C001-secret';
    await tf.admin.call('boxes.register', { serial: 'MTX-C001', claimSecret: secret });
    const c = await connectClient(tf.url, { username: 'claim:MTX-C001', password: secret });
    const subs = await granted(c, [
      claimTopics('MTX-C001').res,
      claimTopics('MTX-A001').res,
      '#',
      deviceTopics(a.deviceId).configDesired,
    ]);
    expect(subs).toEqual([1, 128, 128, 128]);
    c.publish(claimTopics('MTX-A001').req, '{}', { qos: 1 });
    expect(await closed(c)).toBe(true);
    recordAttack({ item: 0, attack: 'ACL: claim identity outside its serial', attempts: 4, refused: 4 });
  });

  it('refuses wrong, empty and missing passwords, and unknown users', async () => {
    const tries = [
      { username: a.username, password: 'wrong-password-123' },
      { username: a.username, password: '' },
      { username: a.username },
      { username: 'cb-nobody', password: 'x'.repeat(20) },
      { username: 'ops:admin', password: a.password },
      { username: 'fleet:core', password: a.password },
      { username: 'not a username', password: 'x'.repeat(20) },
    ];
    let refused = 0;
    for (const t of tries) {
      await expect(connectClient(tf.url, t), t.username).rejects.toThrow(/Bad username or password|Not authorized/i);
      refused++;
    }
    recordAttack({
      item: 0,
      attack: 'ACL: wrong, empty, missing passwords; unknown users',
      attempts: tries.length,
      refused,
    });
  });

  it("does not let one identity take another's session by client id", async () => {
    const owner = await connectClient(tf.url, { username: a.username, password: a.password, clientId: a.deviceId });
    let kicked = 0;
    owner.on('close', () => kicked++);
    const intruders = [
      { username: b.username, password: b.password, clientId: a.deviceId },
      { ...viewer, clientId: a.deviceId },
      { ...viewer, clientId: a.username },
    ];
    for (const i of intruders) {
      const c = await connectClient(tf.url, i);
      await owner.publishAsync(deviceTopics(a.deviceId).telemetry, '', { qos: 1 });
      c.end(true);
    }
    expect(kicked).toBe(0);
    expect(owner.connected).toBe(true);
    owner.end(true);
    recordAttack({
      item: 0,
      attack: 'ACL: session takeover by client id',
      attempts: intruders.length,
      refused: intruders.length,
    });
  });
});
