/**
 * Claim, provisioning, configuration and commands end to end: the real Box
 * against a real aedes broker with per-identity passwords, and the fake
 * fleet answering claims, publishing desired configuration and sending
 * commands.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Box, type UplinkState } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { defaultSettings } from '../device/uplink/settings.js';
import { ConfigReportedSchema, TelemetrySchema } from '../shared/contract/messages.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { isValid } from '../shared/validate.js';
import { waitFor } from '../shared/wait.js';
import { FakeFleet, startBroker, type TestBroker } from './uplink-helpers.js';

const SERIAL = 'CB-TEST-0001';
const SECRET = 'label-secret-1234';
const DEVICE = 'clinic-main-st';
const DEVICE_PW = 'device-password-0123456789';

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function boxConfig(broker: TestBroker, dataDir: string) {
  return loadDeviceConfig(
    undefined,
    {
      box: { serial: SERIAL, claimSecret: SECRET, dataDir },
      mqtt: {
        url: broker.url,
        keepaliveS: 5,
        connectTimeoutMs: 2000,
        reconnectMinMs: 100,
        reconnectMaxMs: 1000,
        requestTimeoutMs: 2000,
        claimRetryS: 1,
      },
    },
    {},
  );
}

async function setup() {
  const broker = await startBroker();
  cleanups.push(() => broker.close());
  broker.accounts = new Map([
    [`claim:${SERIAL}`, SECRET],
    ['fleet:core', 'x'],
  ]);
  const fleet = await FakeFleet.start(broker.fleetUrl);
  cleanups.push(() => fleet.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'callbox-box-'));
  return { broker, fleet, dataDir };
}

function startBox(broker: TestBroker, dataDir: string): { box: Box; states: UplinkState[] } {
  const box = new Box({ config: boxConfig(broker, dataDir), softwareVersion: 'test-1', revokeAfterRefusals: 2 });
  const states: UplinkState[] = [];
  box.on('state', (s) => states.push(s));
  cleanups.push(() => box.stop());
  return { box, states };
}

function desired(version: number, over: Record<string, unknown> = {}) {
  const settings = { ...defaultSettings(), ...over };
  return { v: 1 as const, version, at: new Date().toISOString(), settings };
}

describe('claim, provisioning and configuration', () => {
  it('a new box claims, waits while pending, is provisioned, applies and refuses configuration', async () => {
    const { broker, fleet, dataDir } = await setup();
    const { box, states } = startBox(broker, dataDir);
    const seen: number[] = [];
    await box.start();
    await box.onSettings({
      name: 'calls',
      check: (next) => {
        if (next.clinic.name === 'Veto Me') throw new Error('the calls module cannot use this clinic name');
      },
      apply: (next) => {
        seen.push(next.calls.ringTimeoutS);
      },
    });
    expect(seen).toEqual([20]); // called at once with the settings in force (defaults)
    // Events recorded before the box has an id are kept and sent once it has one.
    await box.events.record('modem.state', { state: 'ready' });
    expect(box.state).toBe('unprovisioned');
    // a second claim request: the box has had the first "pending" answer and asks again
    await waitFor(() => fleet.claimRequests >= 2, 'a second claim request');
    expect(box.state).toBe('unprovisioned');

    // Ops approve; the fleet's broker now knows the device's own credentials. Configuration v1 is already waiting.
    broker.accounts?.set(DEVICE, DEVICE_PW);
    fleet.approvals.set(SERIAL, { deviceId: DEVICE, password: DEVICE_PW });
    fleet.desired.set(DEVICE, desired(1, { calls: { ...defaultSettings().calls, ringTimeoutS: 30 } }));
    await waitFor(() => box.state === 'online', 'online as the device');
    expect(states).toContain('unprovisioned');
    expect(box.deviceId).toBe(DEVICE);

    const credFile = join(dataDir, 'credentials.json');
    expect(statSync(credFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(credFile, 'utf8')).deviceId).toBe(DEVICE);
    expect(readdirSync(dataDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);

    // config.get after connect brought v1.
    await waitFor(() => box.settingsVersion === 1, 'v1 applied');
    expect(seen.at(-1)).toBe(30);
    await fleet.waitFor(() => fleet.reported.some((r) => r.report.version === 1), 5000, 'report of v1');
    const r1 = fleet.reported.find((r) => r.report.version === 1)?.report;
    expect(isValid(ConfigReportedSchema, r1)).toBe(true);
    expect(r1).toMatchObject({ state: 'applied', appliedVersion: 1 });

    // The event recorded while unprovisioned arrives under the new id; status and telemetry too.
    await fleet.events.waitFor(() => fleet.events.count() >= 1, 5000);
    expect(fleet.events.byDevice.get(DEVICE)?.[0]?.type).toBe('modem.state');
    await fleet.waitFor(() => fleet.telemetry.length > 0, 5000, 'telemetry');
    const t = fleet.telemetry[0]?.t;
    expect(isValid(TelemetrySchema, t)).toBe(true);
    expect(t).toMatchObject({ bootId: box.bootId, softwareVersion: 'test-1', configVersion: 1 });
    expect(fleet.statuses.some((s) => s.deviceId === DEVICE && s.status.state === 'online')).toBe(true);

    // A change published while online (retained desired).
    await fleet.setDesired(DEVICE, desired(2, { calls: { ...defaultSettings().calls, ringTimeoutS: 45 } }));
    await waitFor(() => box.settingsVersion === 2, 'v2 applied');
    expect(box.settings.calls.ringTimeoutS).toBe(45);

    // A bad one: refused whole, with the field and what is accepted; v2 stays in force.
    const bad = desired(3, { calls: { ...defaultSettings().calls, ringTimeoutS: 2 } });
    await fleet.setDesired(DEVICE, bad);
    await fleet.waitFor(() => fleet.reported.some((r) => r.report.version === 3), 5000, 'report of v3');
    const r3 = fleet.reported.find((r) => r.report.version === 3)?.report;
    expect(r3).toMatchObject({ state: 'refused', appliedVersion: 2 });
    expect(String(r3?.reason)).toMatch(/\/settings\/calls\/ringTimeoutS: got 2, expected .*>= 5/);
    expect(box.settings.calls.ringTimeoutS).toBe(45);

    // Not JSON at all.
    await fleet.setDesired(DEVICE, {}, '{"version": 4, "settings": ');
    await fleet.waitFor(() => fleet.reported.some((r) => r.report.reason?.toString().includes('not valid JSON')), 5000);

    // Vetoed by a listener: refused with the listener's reason, nothing applied.
    await fleet.setDesired(DEVICE, desired(5, { clinic: { name: 'Veto Me', timezone: 'UTC' } }));
    await fleet.waitFor(() => fleet.reported.some((r) => r.report.version === 5), 5000, 'report of v5');
    expect(fleet.reported.find((r) => r.report.version === 5)?.report).toMatchObject({
      state: 'refused',
      reason: expect.stringMatching(/refused by calls: the calls module cannot use this clinic name/),
      appliedVersion: 2,
    });
    expect(box.settings.clinic.name).toBe('Clinic');
    expect(seen.at(-1)).toBe(45);

    // The last good configuration is on disk: a restart without the network starts on v2.
    await box.stop();
    await broker.down();
    const again = startBox(broker, dataDir).box;
    await again.start();
    expect(again.settingsVersion).toBe(2);
    expect(again.settings.calls.ringTimeoutS).toBe(45);
    await again.stop();
  });

  it('commands: answered by registered handlers, once per request id; bad ones refused with a reason', async () => {
    const { broker, fleet, dataDir } = await setup();
    broker.accounts?.set(DEVICE, DEVICE_PW);
    fleet.approvals.set(SERIAL, { deviceId: DEVICE, password: DEVICE_PW });
    const { box } = startBox(broker, dataDir);
    let sent = 0;
    box.handle('sms.send', () => {
      sent++;
      return { parts: 1, references: [sent] };
    });
    await box.start();
    await waitFor(() => box.state === 'online', 'online');
    const id = '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a';
    const topic = `callbox/v1/${DEVICE}/cmd/req`;
    const first = await fleet.commands.request(topic, 'sms.send', { to: '+15550002222', text: 'hi' }, { id });
    const again = await fleet.commands.request(topic, 'sms.send', { to: '+15550002222', text: 'hi' }, { id });
    expect(first).toEqual({ parts: 1, references: [1] });
    expect(again).toEqual(first);
    expect(sent).toBe(1);
    const diag = await fleet.commands.request(topic, 'diagnostics.collect', {});
    expect(diag).toMatchObject({ deviceId: DEVICE, state: 'online', softwareVersion: 'test-1' });
    const bad = await fleet.commands
      .request(topic, 'sms.send', { to: 'not a number', text: 'hi' } as never)
      .catch((e: unknown) => e);
    // The requester validates its own params first; send raw to check the box's answer.
    expect(isCallboxError(bad, ErrorCode.ValidationFailed)).toBe(true);
    const replies: string[] = [];
    fleet.client.on('message', (t, p) => {
      if (t.endsWith('/cmd/res')) replies.push(p.toString());
    });
    await fleet.client.publishAsync(
      topic,
      JSON.stringify({
        v: 1,
        id: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6b',
        method: 'sms.send',
        params: { to: 'x' },
        sentAt: new Date().toISOString(),
      }),
      { qos: 1 },
    );
    await fleet.client.publishAsync(topic, 'garbage', { qos: 1 });
    await waitFor(() => replies.length >= 2, 'answers to bad commands');
    const messages = replies.map((r) => (JSON.parse(r) as { error?: { message: string } }).error?.message).join('\n');
    expect(messages).toMatch(/params of sms\.send is invalid:.*\/to: got "x", expected string matching/);
    expect(messages).toMatch(/is not valid JSON/);
    expect(sent).toBe(1);
    expect(box.state).toBe('online');

    // Persistent session: a command sent while the box is cut off is queued by the broker and answered after.
    await broker.down();
    await waitFor(() => box.state !== 'online', 'box offline');
    const queued = fleet.commands.request(
      topic,
      'sms.send',
      { to: '+15550003333', text: 'later' },
      { timeoutMs: 8000 },
    );
    await broker.up();
    expect(await queued).toEqual({ parts: 1, references: [2] });

    // Telemetry every settings.telemetry.intervalS.
    await fleet.setDesired(DEVICE, desired(7, { telemetry: { intervalS: 5 } }));
    await waitFor(() => box.settingsVersion === 7, 'v7 applied');
    const applied = Date.now();
    await new Promise((r) => setTimeout(r, 1000)); // let the one sent at (re)connect pass
    const before = fleet.telemetry.length;
    await fleet.waitFor(() => fleet.telemetry.length > before, 9000, 'periodic telemetry');
    expect(Date.now() - applied).toBeGreaterThan(4500);
    expect(Date.now() - applied).toBeLessThan(8000);
    expect(isValid(TelemetrySchema, fleet.telemetry.at(-1)?.t)).toBe(true);

    // The same across a restart of the box: the session (and its subscriptions) outlive the process.
    await box.stop();
    const afterRestart = fleet.commands.request(
      topic,
      'sms.send',
      { to: '+15550004444', text: 'restart' },
      {
        timeoutMs: 8000,
      },
    );
    const { box: box2 } = startBox(broker, dataDir);
    box2.handle('sms.send', () => ({ parts: 1, references: [42] }));
    await box2.start();
    expect(await afterRestart).toEqual({ parts: 1, references: [42] });
    await box2.stop();
  });

  it('revoked credentials: the box says so and goes back to waiting for provisioning; last will marks it offline', async () => {
    const { broker, fleet, dataDir } = await setup();
    broker.accounts?.set(DEVICE, DEVICE_PW);
    fleet.approvals.set(SERIAL, { deviceId: DEVICE, password: DEVICE_PW });
    const { box, states } = startBox(broker, dataDir);
    await box.start();
    await waitFor(() => box.state === 'online', 'online');
    fleet.approvals.delete(SERIAL); // ops have not re-approved it
    broker.accounts?.delete(DEVICE);
    await broker.down(); // the box drops without a DISCONNECT: its will is published
    await broker.up();
    await fleet.waitFor(
      () => fleet.statuses.some((s) => s.status.state === 'offline' && s.status.reason === 'will'),
      5000,
      'last will',
    );
    await waitFor(() => states.includes('revoked'), 'revoked', 10_000);
    await waitFor(() => box.state === 'unprovisioned', 'back to claiming', 10_000);
    expect(readdirSync(dataDir).some((n) => n.startsWith('credentials.json.revoked-'))).toBe(true);
    expect(readdirSync(dataDir)).not.toContain('credentials.json');
    expect(logs.text()).toMatch(
      /refused this box’s credentials: treating them as revoked, back to waiting for provisioning/,
    );
    // Ops provision it again: it comes back.
    broker.accounts?.set('clinic-main-st-2', DEVICE_PW);
    fleet.approvals.set(SERIAL, { deviceId: 'clinic-main-st-2', password: DEVICE_PW });
    await waitFor(() => box.state === 'online' && box.deviceId === 'clinic-main-st-2', 're-provisioned', 10_000);
  });
});
