/**
 * The seam the alert engine uses: a feature started with the fleet hears
 * stored events, sequence gaps, presence and telemetry on the bus, and its
 * listeners are gone after stop.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetBusEvents } from '../fleet/bus.js';
import type { Fleet, FleetFeature } from '../fleet/fleet.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId } from '../shared/ids.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';
import { sampleEvent } from './helpers/store-conformance.js';

class Recorder implements FleetFeature {
  readonly name = 'recorder';
  stored: FleetBusEvents['event.stored'][] = [];
  gaps: FleetBusEvents['sequence.gap'][] = [];
  presence: FleetBusEvents['presence.changed'][] = [];
  telemetry: FleetBusEvents['telemetry'][] = [];
  constructor(private readonly fleet: Fleet) {}
  start(): void {
    const bus = this.fleet.bus;
    bus.on('event.stored', this, (e) => {
      this.stored.push(e);
    });
    bus.on('sequence.gap', this, (g) => {
      this.gaps.push(g);
    });
    bus.on('presence.changed', this, (p) => {
      this.presence.push(p);
    });
    bus.on('telemetry', this, (t) => {
      this.telemetry.push(t);
    });
  }
  stop(): void {
    this.fleet.bus.removeAll(this);
  }
}

describe('fleet feature hooks', () => {
  let tf: TestFleet;
  let recorder: Recorder;
  beforeAll(async () => {
    tf = await startTestFleet(
      {},
      {
        features: [
          (fleet) => {
            recorder = new Recorder(fleet);
            return recorder;
          },
        ],
      },
    );
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('announces stored events once, gaps, presence and telemetry', async () => {
    expect(tf.fleet.feature('recorder')).toBe(recorder);
    const box = await provisionBox(tf, 'HOOK-0001');
    const c = await connectClient(tf.url, box);
    const t = deviceTopics(box.deviceId);
    const boot = newBootId();
    const e1 = sampleEvent(box.deviceId, 1, boot);
    await c.publishAsync(t.events, JSON.stringify(e1), { qos: 1 });
    await c.publishAsync(t.events, JSON.stringify(e1), { qos: 1 }); // redelivered
    await c.publishAsync(t.events, JSON.stringify(sampleEvent(box.deviceId, 4, boot)), { qos: 1 });
    await c.publishAsync(
      t.telemetry,
      JSON.stringify({
        v: 1,
        at: new Date().toISOString(),
        bootId: boot,
        uptimeS: 5,
        softwareVersion: '1.2.3',
        modem: {
          state: 'ready',
          signalDbm: -101,
          registration: 'home',
          operator: null,
          model: null,
          firmware: null,
          simPresent: true,
        },
        freeDiskBytes: 1000,
        outboxDepth: 0,
        voicemailsPending: 0,
        configVersion: null,
      }),
      { qos: 1 },
    );
    await expect.poll(() => recorder.telemetry.length).toBe(1);
    await expect.poll(() => recorder.stored.length).toBe(2);
    expect(recorder.stored.map((s) => s.event.seq)).toEqual([1, 4]);
    expect(recorder.gaps).toEqual([{ deviceId: box.deviceId, fromSeq: 2, toSeq: 3 }]);
    expect(recorder.presence[0]).toMatchObject({ deviceId: box.deviceId, online: true });
    expect(recorder.telemetry[0]?.telemetry.modem.signalDbm).toBe(-101);
    await expect.poll(async () => (await tf.fleet.store.getBox('HOOK-0001'))?.firmware).toBe('1.2.3');
    c.end(true);
  });

  it('removes the feature listeners when the fleet stops', async () => {
    expect(tf.fleet.bus.listenerCount('event.stored')).toBe(1);
    await recorder.stop();
    expect(tf.fleet.bus.listenerCount('event.stored')).toBe(0);
  });
});
