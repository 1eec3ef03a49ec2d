/**
 * The alert scenarios with the whole simulated box: the real Box with every
 * feature module, the modem emulator on a socat pty and the virtual
 * johnny-five board (device/sim/box-rig.ts), against the real fleet with the
 * alerts feature, a local webhook receiver (node http) and SMS sent and
 * received by the emulated modem:
 *
 *   panic button held on the virtual board -> panic.pressed -> step 1
 *   (webhook + SMS to alice through the box's modem: AT+CMGS) -> step 2
 *   (SMS to bob) -> bob's reply "ACK <code>" arrives at the modem (+CMTI,
 *   read, sms.received) -> acknowledged, the box shows it (panic.ack);
 *   rollover on and back, confirmed by the box reading the network's
 *   forwarding state back (AT+CCFC).
 *
 * Timers are real; the engine's clock is injected to jump over the
 * two-minute escalation wait.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedBox } from '../device/sim/box-rig.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { clinicAlertSettings } from '../fleet/alerts/config.js';
import { type AlertsFeature, alertsFeature } from '../fleet/alerts/feature.js';
import { verifyWebhook } from '../fleet/channels/webhook.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { waitFor } from '../shared/wait.js';
import { startTestFleet, type TestFleet } from './helpers/fleet.js';

setupLogging({ level: 'warn', destination: new MemoryLogStream() });

const SERIAL = 'CB-ALERT-0001';
const SECRET = 'label-secret-alert-0001';
const ALICE = '+15550001001';
const BOB = '+15550001002';
const SERVICE = '+15550009999';
const HOOK_SECRET = 'rig-webhook-secret';
const ALL_DAY = [{ open: '00:00', close: '24:00' }];

describe('alerts with the simulated box (modem emulator)', () => {
  let tf: TestFleet;
  let sim: SimulatedBox;
  let feature: AlertsFeature;
  let hooks: { condition: string; alertId: string }[];
  let server: Server;
  let dataDir: string;
  let clinicId: string;
  const clock = { offset: 0, now: () => Date.now() + clock.offset };

  beforeAll(async () => {
    hooks = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const ok = verifyWebhook(
          HOOK_SECRET,
          String(req.headers['x-callbox-timestamp']),
          body,
          String(req.headers['x-callbox-signature']),
        );
        if (ok) hooks.push(JSON.parse(body));
        res.writeHead(ok ? 204 : 401).end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    tf = await startTestFleet(
      {
        alerts: {
          webhooks: [{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, secret: HOOK_SECRET }],
          publicUrl: 'http://fleet.test',
          linkSecret: 'rig-link-secret',
          sweepS: 1,
          smsTimeoutMs: 15_000,
          forwardingTimeoutMs: 15_000,
        },
        ops: { commandTimeoutMs: 15_000 },
      },
      { features: [alertsFeature({ clock })] },
    );
    feature = tf.fleet.feature<AlertsFeature>('alerts') as AlertsFeature;
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Rig Clinic',
      timezone: 'Europe/Berlin',
      phoneNumbers: [],
      answeringService: SERVICE,
      contacts: [
        { name: 'alice', phone: ALICE },
        { name: 'bob', phone: BOB },
      ],
    });
    clinicId = clinic.id;
    await tf.admin.call('alerts.settings.set', {
      clinicId,
      settings: {
        hours: { mon: ALL_DAY, tue: ALL_DAY, wed: ALL_DAY, thu: ALL_DAY, fri: ALL_DAY, sat: ALL_DAY, sun: ALL_DAY },
        policies: {
          critical: {
            steps: [
              { to: ['alice'], channels: ['sms', 'webhook'], waitMin: 2 },
              { to: ['bob'], channels: ['sms'], waitMin: 5 },
            ],
            repeat: 2,
          },
        },
      },
    });
    expect((await feature.alerts?.engine.settingsOf(clinicId))?.policies.critical?.steps).toHaveLength(2);
    expect(clinicAlertSettings({}).rules.panic.severity).toBe('critical');
    await tf.admin.call('boxes.register', { serial: SERIAL, claimSecret: SECRET, clinicId });
    dataDir = mkdtempSync(join(tmpdir(), 'callbox-alerts-rig-'));
    sim = await SimulatedBox.start({ serial: SERIAL, claimSecret: SECRET, brokerUrl: tf.url, dataDir });
    await sim.waitForState('online');
    const s = defaultSettings();
    const { version } = await tf.admin.call('boxes.setConfig', {
      box: SERIAL,
      settings: {
        ...s,
        clinic: { name: 'Rig Clinic', timezone: 'Europe/Berlin' },
        rollover: { ...s.rollover, number: SERVICE, networkForwarding: false },
        panic: { ...s.panic, holdMs: 300, ackTimeoutS: 600 },
      },
    });
    await waitFor(() => sim.box.settingsVersion === version || undefined, `settings v${version} applied`, 15_000);
  }, 60_000);

  afterAll(async () => {
    await sim?.stop().catch(() => undefined);
    await tf?.close();
    server?.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a panic press escalates by SMS through the box and stops at an SMS reply to the box', async () => {
    await sim.pressPanic(500);
    const alert = await waitFor(() => feature.alerts?.store.getActive(clinicId, 'panic'), 'the panic alert', 15_000);
    await waitFor(() => hooks.find((h) => h.alertId === alert.id), 'the webhook of step 1', 15_000);
    const toAlice = await waitFor(() => sim.emu.smsSent.find((m) => m.to === ALICE), 'the SMS to alice', 15_000);
    expect(toAlice.text).toContain('PANIC at Rig Clinic');
    expect(toAlice.text).toContain(`Reply ACK ${alert.shortCode}`);
    await waitFor(
      async () => ((await feature.alerts?.store.getAlert(alert.id))?.nextStep === 1 ? true : undefined),
      'step 1 done',
      15_000,
    );
    expect(sim.emu.smsSent.some((m) => m.to === BOB)).toBe(false);

    clock.offset += 2 * 60_000;
    await feature.alerts?.engine.kick();
    await waitFor(() => sim.emu.smsSent.find((m) => m.to === BOB), 'the SMS to bob (step 2)', 15_000);

    sim.emu.receiveSms(BOB, `ACK ${alert.shortCode}`);
    const acked = await waitFor(
      async () => {
        const a = await feature.alerts?.store.getAlert(alert.id);
        return a?.state === 'acknowledged' ? a : undefined;
      },
      'the alert acknowledged by the SMS reply',
      15_000,
    );
    expect(acked.ackedBy).toBe('sms:bob');
    await waitFor(
      () => sim.features.io.service.indicatorState.panic === 'acknowledged' || undefined,
      'the box showing the acknowledgement',
      15_000,
    );
    const sentBefore = sim.emu.smsSent.length;
    clock.offset += 10 * 60_000;
    await feature.alerts?.engine.kick();
    await new Promise((r) => setTimeout(r, 300));
    expect(sim.emu.smsSent.length).toBe(sentBefore);
  }, 60_000);

  it('rollover on and back, each confirmed by the box from the network', async () => {
    const on = await tf.admin.call('rollover.start', { clinicId, reason: 'the desk is closed for training' });
    expect(on).toMatchObject({ active: true, boxes: [{ confirmed: true }] });
    expect(sim.emu.forwarding.get(0)).toMatchObject({ enabled: true, number: SERVICE });
    const alert = await feature.alerts?.store.getActive(clinicId, 'rollover');
    expect(alert?.text).toMatch(
      /^calls for Rig Clinic are rolling over to the answering service \(…9999\) since .+ because the desk is closed for training$/,
    );
    const off = await tf.admin.call('rollover.stop', { clinicId });
    expect(off).toMatchObject({ active: false });
    expect(sim.emu.forwarding.get(0)?.enabled ?? false).toBe(false);
    expect((await feature.alerts?.store.getAlert(alert?.id ?? ''))?.state).toBe('resolved');
  }, 60_000);
});
