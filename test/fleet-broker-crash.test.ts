/**
 * Killing the embedded broker process costs reconnects, not data: the
 * supervisor starts a new broker on the same port, boxes and the fleet logic
 * reconnect, every event stored before stays, every event sent during and
 * after the outage is stored once, and retained configuration is back.
 */
import { once } from 'node:events';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigDesired } from '../shared/contract/messages.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

describe('embedded broker crash', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('restarts the broker; boxes and the fleet reconnect; no stored event is lost', async () => {
    const box = await provisionBox(tf, 'CRASH-001');
    await tf.admin.call('boxes.setConfig', { box: 'CRASH-001', settings: { clinic: { name: 'Crash Clinic' } } });
    const t = deviceTopics(box.deviceId);
    const c = mqtt.connect(tf.url, {
      username: box.username,
      password: box.password,
      reconnectPeriod: 100,
      clean: true,
    });
    await once(c as unknown as NodeJS.EventEmitter, 'connect');
    const boot = newBootId();
    let seq = 0;
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        seq++;
        c.publish(t.events, JSON.stringify(sampleEvent(box.deviceId, seq, boot)), { qos: 1 });
      }
    };
    await send(50);
    await expect.poll(() => tf.fleet.store.countEvents({ deviceId: box.deviceId })).toBe(50);

    const oldPid = tf.fleet.broker?.pid;
    const restarted = once(tf.fleet.broker as unknown as NodeJS.EventEmitter, 'restarted');
    const fleetBack = new Promise<void>((resolve) =>
      tf.fleet.bus.on('broker.connected', {}, (e) => {
        if (e.reconnect) resolve();
      }),
    );
    tf.fleet.broker?.crash();
    await send(20); // queued by the box while its broker is gone
    await restarted;
    expect(tf.fleet.broker?.pid).not.toBe(oldPid);
    await fleetBack;
    await expect.poll(() => c.connected, { timeout: 5000 }).toBe(true);
    await send(30);
    await expect.poll(() => tf.fleet.store.countEvents({ deviceId: box.deviceId }), { timeout: 8000 }).toBe(100);
    expect(await tf.fleet.store.findGaps(box.deviceId)).toEqual([]);

    // retained desired configuration was published again to the new broker
    const got = new Promise<ConfigDesired>((resolve) =>
      c.on('message', (topic, payload) => {
        if (topic === t.configDesired) resolve(JSON.parse(payload.toString()) as ConfigDesired);
      }),
    );
    await c.subscribeAsync(t.configDesired, { qos: 1 });
    expect((await got).settings.clinic.name).toBe('Crash Clinic');

    // the ops API answers again (its client reconnected too)
    const shown = await tf.admin.call('boxes.show', { box: 'CRASH-001' });
    expect(shown.eventCount).toBe(100);
    expect(tf.fleet.metrics().brokerRestarts).toBe(1);
    c.end(true);
  });
});
