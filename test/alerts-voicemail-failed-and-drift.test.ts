/**
 * Two alert conditions added so nothing goes wrong silently: a voicemail whose
 * recording failed (call outcome voicemail_failed) and a box whose reported
 * configuration differs from the desired one for longer than
 * alerts.configDriftS. Real SQLite stores, recording channels, fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { alertsConfig, clinicAlertSettings } from '../fleet/alerts/config.js';
import { AlertEngine } from '../fleet/alerts/engine.js';
import type { SmsTarget } from '../fleet/channels/sms.js';
import type { WebhookTarget } from '../fleet/channels/webhook.js';
import { EVENT_SCHEMAS } from '../shared/contract/events.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { validate } from '../shared/validate.js';
import { type AlertFixture, alertFixture, boxEvent, RecordingChannel, ScriptedBoxes } from './helpers/alerts.js';

// Thursday 26 Nov 2026, 15:00 UTC = 10:00 in New York (the clinic is open).
const T0 = Date.parse('2026-11-26T15:00:00.000Z');
const DRIFT_S = 300;
const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });
const allWeek = Object.fromEntries(
  ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [{ open: '00:00', close: '24:00' }]]),
);

describe.each(['sqlite', 'postgres'] as const)('alerts: voicemail_failed and config_drift (%s)', (dialect) => {
  let fx: AlertFixture;
  let email: RecordingChannel<string>;
  let webhook: RecordingChannel<WebhookTarget>;
  let engine: AlertEngine;

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(T0);
    fx = await alertFixture({ dialect });
    await fx.alerts.putClinicSettings(
      fx.clinic.id,
      clinicAlertSettings({ hours: allWeek, webhooks: [{ url: 'http://hooks.test/a', secret: 'webhook-secret' }] }),
    );
    email = new RecordingChannel();
    webhook = new RecordingChannel();
    engine = new AlertEngine({
      bus: fx.bus,
      store: fx.store,
      alerts: fx.alerts,
      config: alertsConfig({ sweepS: 15, instance: 'fleet-test', configDriftS: DRIFT_S }),
      channels: { sms: new RecordingChannel<SmsTarget>(), email, webhook },
      commands: new ScriptedBoxes(),
    });
    await engine.start();
    await engine.idle();
  });

  afterEach(async () => {
    await engine.stop({ wait: false });
    vi.useRealTimers();
    await fx.close();
  });

  async function advance(ms: number): Promise<void> {
    await vi.advanceTimersByTimeAsync(ms);
    await engine.kick();
    await engine.idle();
  }

  const ended = (callId: string, outcome: 'voicemail' | 'voicemail_failed', voicemailError?: string) =>
    boxEvent(fx.boxes.main, 'call.ended', {
      callId,
      number: '+15551234567',
      withheld: false,
      outcome,
      rings: 4,
      timeToAnswerMs: null,
      durationMs: 20_000,
      repeatCaller: false,
      inHours: true,
      ...(voicemailError ? { voicemailError } : {}),
    });

  it('the contract takes outcome voicemail_failed with its reason, and refuses a reason that is too long', () => {
    const e = ended('c-1', 'voicemail_failed', 'recording failed: ALSA device busy');
    expect(validate(EVENT_SCHEMAS['call.ended'], e, 'event')).toMatchObject({ body: { outcome: 'voicemail_failed' } });
    const long = ended('c-2', 'voicemail_failed', 'x'.repeat(201));
    expect(() => validate(EVENT_SCHEMAS['call.ended'], long, 'event')).toThrow(/voicemailError/);
  });

  it('a failed voicemail raises voicemail_failed (warning, escalated) and counts as an unanswered call', async () => {
    await engine.handleEvent(ended('c-1', 'voicemail_failed', 'recording failed: ALSA device busy'));
    await engine.idle();
    const a = await fx.alerts.getActive(fx.clinic.id, 'voicemail_failed');
    expect(a).toMatchObject({ severity: 'warning', state: 'open', deviceId: fx.boxes.main });
    expect(a?.text).toContain('NOT recorded (recording failed: ALSA device busy)');
    expect(a?.text).toContain('…4567'); // the caller, masked to the last four digits
    expect(a?.text).not.toContain('+15551234567');
    // The warning policy: webhook and email to every contact.
    expect(webhook.sent.map((s) => s.n.condition)).toEqual(['voicemail_failed']);
    expect(email.sent.map((s) => s.target).sort()).toEqual(['alice@clinic.test', 'bob@clinic.test']);
    // A second one counts on the same alert; together with a third unanswered call it is a missed-calls storm.
    await engine.handleEvent(ended('c-2', 'voicemail_failed', 'no recording of this call'));
    expect((await fx.alerts.getActive(fx.clinic.id, 'voicemail_failed'))?.occurrences).toBe(2);
    await engine.handleEvent(ended('c-3', 'voicemail'));
    expect(await fx.alerts.getActive(fx.clinic.id, 'missed_calls')).toMatchObject({ occurrences: 3 });
  });

  it('a kept voicemail raises no voicemail_failed alert', async () => {
    await engine.handleEvent(ended('c-1', 'voicemail'));
    expect(await fx.alerts.getActive(fx.clinic.id, 'voicemail_failed')).toBeUndefined();
  });

  it('raises config_drift after configDriftS of desired != reported on an online box, and clears it once applied', async () => {
    await fx.store.updateBox('CB-MAIN', { desiredVersion: 2, reportedVersion: 1, reportedState: 'applied' });
    await advance(15_000);
    expect(await fx.alerts.getActive(fx.clinic.id, 'config_drift')).toBeUndefined();
    await advance(DRIFT_S * 1000 - 15_000);
    expect(await fx.alerts.getActive(fx.clinic.id, 'config_drift')).toBeUndefined();
    await advance(15_000);
    const a = await fx.alerts.getActive(fx.clinic.id, 'config_drift');
    expect(a).toMatchObject({ severity: 'warning', deviceId: fx.boxes.main });
    expect(a?.text).toContain('version 2 is desired, the box reports 1');
    expect(webhook.sent.map((s) => s.n.condition)).toEqual(['config_drift']);
    // The box applies version 2: the alert is resolved at the next sweep.
    await fx.store.updateBox('CB-MAIN', { reportedVersion: 2 });
    await advance(15_000);
    expect(await fx.alerts.getActive(fx.clinic.id, 'config_drift')).toBeUndefined();
    const [resolved] = await fx.alerts.listAlerts({ clinicId: fx.clinic.id });
    expect(resolved).toMatchObject({ condition: 'config_drift', state: 'resolved', resolvedBy: 'engine' });
  });

  it('says why when the box refused the desired version; an offline box is left to box_offline', async () => {
    await fx.store.updateBox('CB-SECOND', {
      desiredVersion: 3,
      reportedVersion: 2,
      reportedState: 'refused',
      reportedReason: 'opening hours are invalid: hours.weekly.mon[0].close',
    });
    await fx.store.updateBox('CB-MAIN', { desiredVersion: 5, reportedVersion: 4, online: false });
    fx.bus.emit('presence.changed', {
      deviceId: fx.boxes.main,
      online: false,
      at: new Date().toISOString(),
      reason: 'will',
    });
    await advance(15_000); // noticed
    await advance(DRIFT_S * 1000); // and lasted
    const alerts = await fx.alerts.listAlerts({ clinicId: fx.clinic.id });
    const drift = alerts.filter((a) => a.condition === 'config_drift');
    expect(drift.map((a) => a.deviceId)).toEqual([fx.boxes.second]);
    expect(drift[0]?.occurrences).toBe(1);
    expect(drift[0]?.text).toContain('It refused the desired version: opening hours are invalid');
  });

  it('a reopen that fails is logged, not left unhandled, and done at the next tick', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      await engine.handleEvent(ended('c-9', 'voicemail_failed', 'recording failed: disk full'));
      const a = await fx.alerts.getActive(fx.clinic.id, 'voicemail_failed');
      if (!a) throw new Error('no alert');
      await engine.acknowledge(a.id, 'ops:carol');
      const store = fx.alerts;
      const real = store.updateAlert.bind(store);
      let failing = true;
      store.updateAlert = (async (...args: Parameters<typeof real>) => {
        if (args[1].state === 'open' && failing) throw new Error('database is locked');
        return real(...args);
      }) as typeof real;
      await advance(61 * 60_000); // past ackTimeoutMin (60): the reopen fails (at every tick while failing)
      await engine.idle();
      expect((await fx.alerts.getAlert(a.id))?.state).toBe('acknowledged');
      expect(logs.lines.map((l) => l.msg)).toContain(
        `background task failed: reopening alert ${a.id}; tried again at the next tick`,
      );
      failing = false;
      await advance(15_000);
      expect((await fx.alerts.getAlert(a.id))?.state).toBe('open');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
