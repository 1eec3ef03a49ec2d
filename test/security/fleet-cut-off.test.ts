/**
 * Item 2: nothing a client can ask makes the fleet's own messages too large
 * for its broker. Before the fix the payload limit applied to the fleet's
 * own publishes and mqtt.js resent the refused QoS 1 answer at every
 * reconnect: the fleet was cut off from its broker until restarted. Three
 * triggers, each followed by a box event that the fleet must still store:
 * a viewer's long events.list; a voicemail chunk claiming index 99 999 of
 * 100 000 (a huge "missing" list); many unknown claims, then claims.list.
 * The broker's payload limit is set low (4 KiB) so the answers cross it.
 */
import { createHash } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpsClient } from '../../fleet/ops-client.js';
import { voicemailFeature } from '../../fleet/voicemail/feature.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newEventId } from '../../shared/ids.js';
import { waitFor } from '../../shared/wait.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { sampleEvent } from '../helpers/store-conformance.js';
import { recordAttack } from './attacks.js';
import { opsUser } from './helpers.js';

describe('security 2: the fleet cut off from its broker by its own large messages', () => {
  let tf: TestFleet;
  let box: MqttClient;
  let deviceId: string;
  let viewer: OpsClient;
  let seq = 0;
  let attempts = 0;
  let refused = 0;

  /** A new event from the box, which the fleet must store: it is still connected and working. */
  async function fleetStillWorks(what: string): Promise<void> {
    const e = sampleEvent(deviceId, ++seq);
    await box.publishAsync(deviceTopics(deviceId).events, JSON.stringify(e), { qos: 1 });
    await waitFor(
      async () => (await tf.fleet.store.listEvents({ deviceId, limit: 5 })).some((x) => x.id === e.id),
      `the fleet to store an event after ${what}`,
      15_000,
    );
    expect(tf.fleet.client?.connected, what).toBe(true);
    expect(tf.fleet.metrics().reconnects, what).toBe(0);
  }

  beforeAll(async () => {
    tf = await startTestFleet({ mqtt: { maxPayloadBytes: 4096 } }, { features: [voicemailFeature()] });
    const creds = await provisionBox(tf, 'SEC2-0001');
    deviceId = creds.deviceId;
    box = await connectClient(tf.url, { username: creds.username, password: creds.password });
    const v = await opsUser(tf, 'sec2viewer', 'viewer');
    viewer = await OpsClient.connect(tf.url, 'sec2viewer', v.password);
  });
  let closed = false;
  afterAll(async () => {
    if (closed) return;
    await viewer?.close();
    await box?.endAsync(true);
    await tf?.close();
  });

  it("survives a viewer's events.list longer than the payload limit, and pages it", async () => {
    for (let i = 0; i < 60; i++) {
      await box.publishAsync(deviceTopics(deviceId).events, JSON.stringify(sampleEvent(deviceId, ++seq)), { qos: 1 });
    }
    await waitFor(
      async () => (await tf.fleet.store.countEvents({ deviceId })) === 60,
      'the 60 events to be stored',
      15_000,
    );
    attempts++;
    const all = await viewer.call('events.list', { box: 'SEC2-0001', limit: 1000 });
    expect(all).toHaveLength(60);
    expect(JSON.stringify(all).length).toBeGreaterThan(4096);
    await fleetStillWorks('events.list with limit 1000');
    refused++;
    // Paging: pages of 25 from a cursor give every event once.
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await viewer.call('events.list', { box: 'SEC2-0001', limit: 25, ...(before ? { before } : {}) });
      seen.push(...page.map((e) => e.id));
      if (page.length < 25) break;
      before = page[page.length - 1]?.id;
    }
    expect(new Set(seen).size).toBe(61);
    expect(seen.length).toBe(61);
    // A limit above the page bound is refused with a clear error naming it.
    await expect(viewer.call('events.list', { limit: 10_000 } as never)).rejects.toThrow(/limit/);
  });

  it('survives a voicemail chunk claiming index 99 999 of 100 000', async () => {
    const data = Buffer.alloc(200, 7);
    const chunk = (count: number, totalBytes: number) => ({
      v: 1,
      voicemailId: newEventId(),
      index: count - 1,
      count,
      totalBytes,
      sha256: createHash('sha256').update(data).digest('hex'),
      data: data.toString('base64'),
    });
    // As in the attack: a size that can hold 100 000 chunks is over the 64 MiB bound; and the largest size
    // allowed, whose "missing" list (65 535 indexes) is far over the payload limit.
    for (const c of [chunk(100_000, 100_000 * 36_864), chunk(100_000, 200), chunk(65_536, 65_536 * 1024)]) {
      attempts++;
      await box.publishAsync(deviceTopics(deviceId).voicemailChunk, JSON.stringify(c), { qos: 1 });
      await fleetStillWorks(`voicemail chunk ${c.index} of ${c.count} (${c.totalBytes} bytes)`);
      refused++;
    }
  });

  it('survives many unknown claims, then claims.list', async () => {
    const conns: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      conns.push(
        connectClient(tf.url, { username: `claim:SEC2-U${String(i).padStart(3, '0')}`, password: `secret-${i}-xyz` })
          .then((c) => c.endAsync(true))
          .catch(() => undefined),
      );
    }
    await Promise.all(conns);
    attempts++;
    const pending = await viewer.call('claims.list', {});
    expect(pending.length).toBeGreaterThan(0);
    await fleetStillWorks('claims.list');
    refused++;
    const stopStarted = Date.now();
    await viewer.close();
    await box.endAsync(true);
    await tf.close();
    closed = true;
    expect(Date.now() - stopStarted).toBeLessThan(10_000);
    recordAttack({ item: 2, attack: "make the fleet's own answers exceed the payload limit", attempts, refused });
  });
});
