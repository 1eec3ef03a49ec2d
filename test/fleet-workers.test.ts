/**
 * Two fleet workers (processes of their own) on one PostgreSQL database and
 * one Mosquitto: each logs in with its own login and client id (neither
 * throws the other off), each reads a share of the box events through the
 * shared subscription $share/fleet/..., every event is stored once and
 * receipted (the boxes' real outboxes drain), every panic is alerted once
 * and its escalation step sent once, whichever worker reads it.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMosquittoConfig } from '../fleet/mosquitto.js';
import { type FleetWorker, startFleetWorker } from '../scripts/lib/fleet-workers.js';
import { freePort, type RunningMosquitto, startMosquitto } from '../scripts/lib/mosquitto.js';
import { OutboxBox } from '../scripts/lib/outbox-box.js';
import { newEventId } from '../shared/ids.js';
import { waitFor } from '../shared/wait.js';
import { prepareScene, type Scene, sceneCounts, workerConfig } from './helpers/workers.js';

const BOXES = 6;
const EVENTS = 30;

describe('two fleet workers on one PostgreSQL database and Mosquitto', () => {
  let scene: Scene;
  let mosq: RunningMosquitto;
  const workers: FleetWorker[] = [];
  const boxes: OutboxBox[] = [];

  beforeAll(async () => {
    scene = await prepareScene(BOXES);
    const port = await freePort();
    const gen = await generateMosquittoConfig(scene.store, {
      dir: join(scene.dir, 'mosquitto'),
      port,
      fleetWorkers: ['w1', 'w2'],
    });
    mosq = await startMosquitto(gen.confFile, port);
    const url = `mqtt://127.0.0.1:${port}`;
    // One after the other: the first start makes the patient-data key file both share.
    for (const w of gen.workers) {
      const name = w.username.slice('fleet:'.length);
      workers.push(
        await startFleetWorker(
          name,
          workerConfig(scene, {
            name,
            brokerUrl: url,
            username: w.username,
            passwordFile: w.secretFile,
            source: 'shared',
          }),
        ),
      );
    }
    for (const b of scene.boxes) {
      boxes.push(
        await OutboxBox.start({
          deviceId: b.deviceId,
          password: b.password,
          urls: [url],
          dir: join(scene.dir, 'boxes'),
          publishBatch: 8,
          // Longer than the test waits: every event must be receipted without the box sending it again.
          receiptTimeoutMs: 120_000,
        }),
      );
    }
  }, 90_000);

  afterAll(async () => {
    for (const b of boxes) await b.close();
    for (const w of workers) await w.stop();
    await mosq?.stop();
    await scene?.close();
  }, 60_000);

  it('share the events: each stored once, every panic alerted once, neither worker thrown off', async () => {
    await waitFor(() => boxes.every((b) => b.connected), 'boxes connected', { timeoutMs: 20_000 });
    for (let i = 0; i < EVENTS; i++) {
      for (const b of boxes) {
        const body = {
          callId: `c${i}`,
          number: null,
          withheld: true,
          inHours: true,
          repeatCaller: false,
          waiting: false,
        };
        void b.record('call.incoming', body);
        if (i === EVENTS / 2) void b.record('panic.pressed', { panicId: newEventId(), source: 'desk' });
      }
    }
    await waitFor(
      async () => (await Promise.all(boxes.map((b) => b.outbox.depth))).every((d) => d === 0),
      'outboxes receipted',
      {
        timeoutMs: 30_000,
      },
    );
    await waitFor(async () => (await sceneCounts(scene)).hookedAlerts === BOXES, 'every panic at the webhook', {
      timeoutMs: 20_000,
    });
    const counts = await sceneCounts(scene);
    expect(counts).toMatchObject({
      events: BOXES * (EVENTS + 1),
      storedTwice: 0,
      panicAlerts: BOXES,
      clinicsAlertedTwice: 0,
      hooksTwice: 0,
      hookedAlerts: BOXES,
    });
    const m = await Promise.all(workers.map((w) => w.metrics()));
    // Each worker read a share; neither was thrown off the broker by the other.
    for (const { metrics } of m) {
      expect(metrics.ingest.received).toBeGreaterThan(0);
      expect(metrics.reconnects).toBe(0);
    }
    expect(m.reduce((n, x) => n + x.metrics.ingest.stored, 0)).toBe(BOXES * (EVENTS + 1));
  }, 90_000);
});
