/**
 * Item 14: the event envelope is bounded. The attack: a box (its own valid
 * login) publishes events with seq 2^53 - 1 (where seq + 1 === seq: gap
 * detection blind for that box), `at` in the year 9999, the retained flag
 * (the broker would keep and replay it), a 261 KB panic source and invalid
 * UTF-8 in a string. Before the fix all of them were stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopics } from '../../shared/contract/topics.js';
import { waitFor } from '../../shared/wait.js';
import { closed, connectClient, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { sampleEvent } from '../helpers/store-conformance.js';
import { recordAttack } from './attacks.js';

describe('security 14: odd events stored', () => {
  let tf: TestFleet;
  let box: { deviceId: string; username: string; password: string };
  beforeAll(async () => {
    tf = await startTestFleet();
    box = await provisionBox(tf, 'SEC14-001');
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('stores none of them, and the box goes on sending good events', async () => {
    const t = deviceTopics(box.deviceId);
    const e = (seq: number) =>
      sampleEvent(box.deviceId, seq) as ReturnType<typeof sampleEvent> & Record<string, unknown>;
    const invalidUtf8 = Buffer.concat([
      Buffer.from(JSON.stringify(e(5)).replace('"desk"', '"de')),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('sk"'),
    ]);
    const attacks: { name: string; payload: string | Buffer; retain?: boolean }[] = [
      { name: 'seq 2^53 - 1', payload: JSON.stringify({ ...e(1), seq: Number.MAX_SAFE_INTEGER }) },
      { name: 'at in year 9999', payload: JSON.stringify({ ...e(2), at: '9999-12-31T23:59:59.000Z' }) },
      { name: 'retained event', payload: JSON.stringify(e(3)), retain: true },
      {
        name: '261 KB panic source',
        payload: JSON.stringify({
          ...e(4),
          body: { panicId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b70', source: 'x'.repeat(261_000) },
        }),
      },
      { name: 'invalid UTF-8', payload: invalidUtf8 },
    ];
    let refused = 0;
    for (const a of attacks) {
      const c = await connectClient(tf.url, { username: box.username, password: box.password });
      c.publish(t.events, a.payload, { qos: 1, retain: a.retain ?? false });
      // A good event behind it: once it is stored, the odd one was handled (refused by the broker or the fleet).
      const good = e(100 + refused);
      if (a.retain) {
        expect(await closed(c), a.name).toBe(true);
        const again = await connectClient(tf.url, { username: box.username, password: box.password });
        await again.publishAsync(t.events, JSON.stringify(good), { qos: 1 });
        again.end(true);
      } else {
        await c.publishAsync(t.events, JSON.stringify(good), { qos: 1 });
        c.end(true);
      }
      await waitFor(
        async () =>
          (await tf.fleet.store.listEvents({ deviceId: box.deviceId, limit: 1000 })).some((x) => x.id === good.id),
        `the good event after "${a.name}"`,
        15_000,
      );
      const stored = await tf.fleet.store.listEvents({ deviceId: box.deviceId, limit: 1000 });
      const odd = stored.filter((x) => x.seq < 100);
      expect(
        odd.map((x) => x.seq),
        a.name,
      ).toEqual([]);
      refused++;
    }
    // Nothing retained on the events topic for a new subscriber (the fleet's own view of it).
    const stored = await tf.fleet.store.listEvents({ deviceId: box.deviceId, limit: 1000 });
    expect(stored.map((x) => x.seq).sort((x, y) => x - y)).toEqual([100, 101, 102, 103, 104]);
    expect(tf.fleet.metrics().rejectedMessages).toBeGreaterThanOrEqual(4);
    recordAttack({
      item: 14,
      attack: 'odd events: huge seq, year 9999, retained, 261 KB string, bad UTF-8',
      attempts: attacks.length,
      refused,
    });
  });
});
