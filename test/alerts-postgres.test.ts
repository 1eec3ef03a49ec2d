/**
 * The alert engine with its store in PostgreSQL: escalation, a restart in
 * the middle of it, and two fleet instances (two connection pools) racing
 * for the same steps, which each run once. Fake timers drive the waits.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { alertsConfig, clinicAlertSettings } from '../fleet/alerts/config.js';
import { AlertEngine } from '../fleet/alerts/engine.js';
import type { SqlAlertStore } from '../fleet/alerts/store.js';
import type { SmsTarget } from '../fleet/channels/sms.js';
import { type AlertFixture, alertFixture, PHONES, RecordingChannel, ScriptedBoxes } from './helpers/alerts.js';
import { createTestDatabase } from './helpers/postgres.js';

const T0 = Date.parse('2026-11-26T15:00:00.000Z');
const MIN = 60_000;

describe('alert engine on PostgreSQL', () => {
  let fx: AlertFixture;
  let drop: () => Promise<void>;
  const engines: AlertEngine[] = [];
  const extra: SqlAlertStore[] = [];

  function engine(alerts: SqlAlertStore, instance: string, sms: RecordingChannel<SmsTarget>): AlertEngine {
    const e = new AlertEngine({
      bus: fx.bus,
      store: fx.store,
      alerts,
      config: alertsConfig({ instance }),
      channels: { sms, email: new RecordingChannel(), webhook: new RecordingChannel() },
      commands: new ScriptedBoxes(),
    });
    engines.push(e);
    return e;
  }

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(T0);
    const db = await createTestDatabase();
    drop = db.drop;
    fx = await alertFixture({ postgresUrl: db.url });
    await fx.alerts.putClinicSettings(
      fx.clinic.id,
      clinicAlertSettings({
        policies: {
          critical: {
            steps: [
              { to: ['alice'], channels: ['sms'], waitMin: 2 },
              { to: ['bob'], channels: ['sms'], waitMin: 2 },
            ],
            repeat: 2,
          },
        },
      }),
    );
  });

  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop({ wait: false });
    for (const s of extra.splice(0)) await s.close();
    vi.useRealTimers();
    await fx.close();
    await drop();
  });

  it('resumes after a restart and runs every step once across two instances', async () => {
    const smsA = new RecordingChannel<SmsTarget>();
    const smsB = new RecordingChannel<SmsTarget>();
    const a = engine(fx.alerts, 'fleet-a', smsA);
    await a.start();
    await a.raise(fx.clinic.id, 'panic', { severity: 'critical', text: 'PANIC at Main St' });
    expect(smsA.sent.map((x) => x.target.to)).toEqual([PHONES.alice]);
    await a.stop({ wait: false }); // instance a dies

    const storeB = await fx.another();
    extra.push(storeB);
    const storeC = await fx.another();
    extra.push(storeC);
    const smsC = new RecordingChannel<SmsTarget>();
    const b = engine(storeB, 'fleet-b', smsB);
    const c = engine(storeC, 'fleet-c', smsC);
    await b.start();
    await c.start();
    for (let i = 0; i < 8; i++) {
      await vi.advanceTimersByTimeAsync(MIN);
      await Promise.all([b.kick(), c.kick()]);
      await Promise.all([b.idle(), c.idle()]);
    }
    const all = [...smsA.sent, ...smsB.sent, ...smsC.sent];
    expect(all.map((x) => x.n.step).sort()).toEqual([0, 1, 2, 3]);
    expect(all.map((x) => x.target.to)).toEqual(expect.arrayContaining([PHONES.alice, PHONES.bob]));
    const [alert] = await fx.alerts.listAlerts({ clinicId: fx.clinic.id });
    expect(alert).toMatchObject({ state: 'open', nextStep: 4, nextStepAt: null });
    const deliveries = await fx.alerts.listDeliveries(alert?.id ?? '');
    expect(deliveries.filter((d) => d.status === 'sent')).toHaveLength(4);
  });
});
