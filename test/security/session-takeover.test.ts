/**
 * Item 4: a client id is bound to the login, so no one takes over another's
 * session. The attack: a viewer connects with a box's client id (before the
 * fix: the box was kicked and the viewer got its queued configuration, with
 * contact numbers) and with the fleet's own client ids (before: the fleet
 * was kicked and the viewer got the boxes' panic events from its session).
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../shared/contract/topics.js';
import { waitFor } from '../../shared/wait.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { sampleEvent } from '../helpers/store-conformance.js';
import { recordAttack } from './attacks.js';
import { opsUser } from './helpers.js';

function watch(c: MqttClient) {
  const seen = { messages: [] as string[], closes: 0 };
  c.on('message', (topic) => seen.messages.push(topic));
  c.on('close', () => seen.closes++);
  return seen;
}

describe('security 4: session takeover by client id', () => {
  let tf: TestFleet;
  let box: { deviceId: string; username: string; password: string };
  let viewer: { username: string; password: string };
  beforeAll(async () => {
    tf = await startTestFleet();
    box = await provisionBox(tf, 'SEC4-0001');
    viewer = await opsUser(tf, 'sec4viewer', 'viewer');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it("neither kicks a box nor inherits its queued configuration with the box's client id", async () => {
    const t = deviceTopics(box.deviceId);
    const boxOpts = { username: box.username, password: box.password, clientId: box.deviceId, clean: false };
    const b1 = await connectClient(tf.url, boxOpts);
    await b1.subscribeAsync([t.configDesired, t.cmdReq], { qos: 1 });
    await b1.endAsync();
    // Queued for the box's persistent session while it is away (contact numbers in it).
    await tf.admin.call('boxes.setConfig', {
      box: 'SEC4-0001',
      settings: { rollover: { number: '+15550104444' } },
    });

    let attempts = 0;
    let refused = 0;
    const stolen: string[] = [];
    for (const clientId of [box.deviceId, box.username, `${box.deviceId}/x`]) {
      attempts++;
      const v = await connectClient(tf.url, { ...viewer, clientId, clean: false });
      const seen = watch(v);
      // The box comes back and gets what was queued for it: the viewer sits in another session.
      const b = await connectClient(tf.url, boxOpts);
      const boxSeen = watch(b);
      await b.subscribeAsync([t.configDesired], { qos: 1 });
      await waitFor(() => boxSeen.messages.includes(t.configDesired), 'the box to get its configuration', 15_000);
      // The viewer connecting again with the same id does not kick the box either.
      const v2 = await connectClient(tf.url, { ...viewer, clientId, clean: false });
      await b.publishAsync(t.telemetry, '', { qos: 1 });
      expect(boxSeen.closes, clientId).toBe(0);
      expect(b.connected).toBe(true);
      stolen.push(...seen.messages);
      if (seen.messages.length === 0) refused++;
      await Promise.all([v.endAsync(true), v2.endAsync(true), b.endAsync()]);
    }
    expect(stolen).toEqual([]);
    recordAttack({ item: 4, attack: "log in as a viewer with a box's client id", attempts, refused });
  });

  it("neither kicks the fleet nor gets its events with the fleet's client ids", async () => {
    const before = tf.fleet.metrics().reconnects;
    const b = await connectClient(tf.url, { username: box.username, password: box.password });
    const stolen: string[] = [];
    const ids = ['fleet-core', 'fleet:core/fleet-core', 'fleet:core'];
    let attempts = 0;
    let refused = 0;
    for (let i = 0; i < 10; i++) {
      const clientId = ids[i % ids.length] as string;
      attempts++;
      const v = await connectClient(tf.url, { ...viewer, clientId, clean: false });
      const seen = watch(v);
      const e = sampleEvent(box.deviceId, 100 + i);
      await b.publishAsync(deviceTopics(box.deviceId).events, JSON.stringify(e), { qos: 1 });
      // The fleet, still in its session, stores it.
      await waitFor(
        async () => (await tf.fleet.store.listEvents({ deviceId: box.deviceId })).some((x) => x.id === e.id),
        'the fleet to store the event',
        15_000,
      );
      stolen.push(...seen.messages);
      if (seen.messages.length === 0) refused++;
      await v.endAsync(true);
    }
    await b.endAsync();
    expect(stolen).toEqual([]);
    expect(tf.fleet.metrics().reconnects).toBe(before);
    expect(tf.fleet.client?.connected).toBe(true);
    recordAttack({ item: 4, attack: "log in as a viewer with the fleet's client ids", attempts, refused });
  });
});
