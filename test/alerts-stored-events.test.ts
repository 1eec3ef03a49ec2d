/**
 * The alert engine acts on every stored event exactly once, on both stores:
 * events stored while it was down (or not yet started: the fleet subscribes
 * and stores before its features start) are raised at its start; events read
 * again after a crash open or count nothing twice; two fleet instances share
 * one cursor, so each event is applied once, and the survivor of a crash
 * takes over once the lease runs out. Events are stored the way ingest
 * stores them (Store.insertEvents, then 'event.stored' on that instance's
 * bus). Real timers; waits are conditions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alertsConfig } from '../fleet/alerts/config.js';
import { AlertEngine, EVENT_CURSOR } from '../fleet/alerts/engine.js';
import { SqlAlertStore } from '../fleet/alerts/store.js';
import type { AlertStore } from '../fleet/alerts/types.js';
import { FleetBus } from '../fleet/bus.js';
import { PostgresStore } from '../fleet/store/postgres.js';
import { SqliteStore } from '../fleet/store/sqlite.js';
import type { Store } from '../fleet/store/types.js';
import type { AnyEvent } from '../shared/contract/events.js';
import { newEventId } from '../shared/ids.js';
import { type AlertFixture, alertFixture, boxEvent, RecordingChannel, ScriptedBoxes } from './helpers/alerts.js';
import { createTestDatabase } from './helpers/postgres.js';

interface Instance {
  engine: AlertEngine;
  bus: FleetBus;
  store: Store;
  alerts: AlertStore;
}

describe.each(['sqlite', 'postgres'] as const)('stored events reach the alert engine exactly once (%s)', (kind) => {
  let fx: AlertFixture;
  let url = '';
  let drop: (() => Promise<void>) | undefined;
  const running: Instance[] = [];
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      url = db.url;
      drop = db.drop;
      fx = await alertFixture({ postgresUrl: url, storeUrl: url });
    } else {
      fx = await alertFixture();
    }
  });

  afterEach(async () => {
    for (const i of running.splice(0)) await i.engine.stop({ wait: false });
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    await fx.close();
    await drop?.();
    drop = undefined;
  });

  /** An alert engine as one fleet instance runs it; `own`: its own connections to both stores. */
  async function instance(name: string, own = false): Promise<Instance> {
    let store = fx.store;
    let alerts: AlertStore = fx.alerts;
    if (own) {
      const own = kind === 'postgres' ? await PostgresStore.open(url) : await SqliteStore.open(fx.dbPath);
      store = own;
      alerts = SqlAlertStore.over(own); // one connection per instance, as in the fleet
      closers.push(() => own.close());
    }
    const bus = new FleetBus();
    const engine = new AlertEngine({
      bus,
      store,
      alerts,
      config: alertsConfig({ instance: name, leaseS: 1, eventPollMs: 100, sweepS: 60 }),
      channels: { sms: new RecordingChannel(), email: new RecordingChannel(), webhook: new RecordingChannel() },
      commands: new ScriptedBoxes(),
    });
    await engine.start();
    const i = { engine, bus, store, alerts };
    running.push(i);
    return i;
  }

  /** Store an event as ingest does: insert, then tell the instance's bus (if one runs). */
  async function stored(e: AnyEvent, via?: Instance): Promise<void> {
    const store = via?.store ?? fx.store;
    const [id] = await store.insertEvents([e]);
    expect(id).toBe(e.id);
    const [got] = await store.listEvents({ deviceId: e.deviceId, limit: 1 });
    if (got) via?.bus.emit('event.stored', { event: got, raw: e });
  }

  const panic = (deviceId: string, panicId = newEventId()) =>
    boxEvent(deviceId, 'panic.pressed', { panicId, source: 'gpio:panic' });

  const caughtUp = async () =>
    expect
      .poll(async () => (await fx.store.getCursor(EVENT_CURSOR))?.pos, { timeout: 20_000 })
      .toBe(await fx.store.eventsHead());

  it('raises the panic presses stored before it started and while it was down', async () => {
    const p1 = newEventId();
    const p2 = newEventId();
    // The fleet stored these before the engine started (the window of a fleet restart).
    await stored(panic(fx.boxes.main, p1));
    await stored(panic(fx.boxes.sibling, p2));
    await instance('fleet');
    await expect
      .poll(async () => (await fx.alerts.getActive(fx.clinic.id, 'panic'))?.details.panicId, { timeout: 20_000 })
      .toBe(p1);
    await expect
      .poll(async () => (await fx.alerts.getActive(fx.other.id, 'panic'))?.details.panicId, { timeout: 20_000 })
      .toBe(p2);
    const first = running[0] as Instance;
    await first.engine.resolve((await fx.alerts.getActive(fx.clinic.id, 'panic'))?.id ?? '', 'test');
    await caughtUp();

    await first.engine.stop({ wait: false }); // killed
    running.splice(0);
    const p3 = newEventId();
    await stored(panic(fx.boxes.second, p3)); // while it is down
    await instance('fleet');
    await expect
      .poll(async () => (await fx.alerts.getActive(fx.clinic.id, 'panic'))?.details.panicId, { timeout: 20_000 })
      .toBe(p3);
    expect(await fx.alerts.listAlerts({ condition: 'panic' })).toHaveLength(3);
  });

  it('reads events again after a crash without opening or counting anything twice', async () => {
    const a = await instance('fleet');
    await stored(panic(fx.boxes.main), a);
    await stored(panic(fx.boxes.second), a);
    for (let i = 0; i < 2; i++) {
      await stored(
        boxEvent(fx.boxes.main, 'call.ended', {
          callId: newEventId(),
          number: '+15551234567',
          withheld: false,
          outcome: 'missed',
          rings: 6,
          timeToAnswerMs: null,
          durationMs: 0,
          repeatCaller: false,
          inHours: false,
        }),
        a,
      );
    }
    await caughtUp();
    const alert = await fx.alerts.getActive(fx.clinic.id, 'panic');
    expect(alert?.occurrences).toBe(2);
    await a.engine.resolve(alert?.id ?? '', 'test');
    const before = await fx.alerts.listAlerts({ limit: 100 });

    // Killed after applying but before moving the cursor: the events are read again.
    await a.engine.stop({ wait: false });
    running.splice(0);
    const head = await fx.store.eventsHead();
    const now = new Date().toISOString();
    expect(await fx.store.advanceCursor(EVENT_CURSOR, { owner: 'fleet', from: head, to: 0, now, until: now })).toBe(
      true,
    );
    await instance('fleet');
    await caughtUp();
    const after = await fx.alerts.listAlerts({ limit: 100 });
    expect(after.map((x) => [x.id, x.condition, x.occurrences, x.state])).toEqual(
      before.map((x) => [x.id, x.condition, x.occurrences, x.state]),
    );
    expect(await fx.alerts.getActive(fx.clinic.id, 'panic')).toBeUndefined();
  });

  it('shares one cursor between two fleet instances: each event once, the survivor takes over', async () => {
    const a = await instance('fleet-a', true);
    const b = await instance('fleet-b', true);
    const count = async () =>
      (await fx.alerts.listAlerts({ condition: 'panic', limit: 100 })).reduce((n, x) => n + x.occurrences, 0);
    for (let i = 0; i < 30; i++) {
      const via = i % 2 === 0 ? a : b;
      await stored(panic(i % 3 === 0 ? fx.boxes.sibling : fx.boxes.main), via);
    }
    await caughtUp();
    expect(await count()).toBe(30);
    expect((await fx.alerts.listAlerts({ condition: 'panic' })).map((x) => x.clinicId).sort()).toEqual(
      [fx.clinic.id, fx.other.id].sort(),
    );

    // The holder dies without a goodbye; the other takes the cursor once the lease (1 s) runs out.
    const holder = (await fx.store.getCursor(EVENT_CURSOR))?.owner;
    const [dead, survivor] = holder === 'fleet-a' ? [a, b] : [b, a];
    await dead.engine.stop({ wait: false });
    for (let i = 0; i < 20; i++) await stored(panic(fx.boxes.second), survivor);
    await caughtUp();
    expect(await count()).toBe(50);
    expect((await fx.store.getCursor(EVENT_CURSOR))?.owner).toBe(holder === 'fleet-a' ? 'fleet-b' : 'fleet-a');
  });
});
