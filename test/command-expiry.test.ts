/**
 * Commands carry an expiry: a command queued for an offline box in its
 * persistent session is refused when the box gets it too late (error
 * RequestExpired naming the expiry and the box's clock), instead of running
 * hours later. The real Box against a real aedes broker and the fake fleet
 * (whose requester sends version 2 requests with expiresAt).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Box } from '../device/box.js';
import { loadDeviceConfig } from '../device/config.js';
import { runCli } from '../fleet/cli.js';
import { DEVICE_COMMANDS, type RpcRequest } from '../shared/contract/rpc.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { type CallboxError, ErrorCode, isCallboxError } from '../shared/errors.js';
import { newRequestId } from '../shared/ids.js';
import { MemoryLogStream, setupLogging } from '../shared/log.js';
import { RpcResponder } from '../shared/rpc.js';
import { waitFor } from '../shared/wait.js';
import { connectClient, provisionBox, startTestFleet } from './helpers/fleet.js';
import { FakeFleet, startBroker, type TestBroker } from './uplink-helpers.js';

const SERIAL = 'CB-EXPIRY-0001';
const SECRET = 'label-secret-expiry';
const DEVICE = 'clinic-expiry';
const DEVICE_PW = 'device-password-expiry-0123456789';
const TOPIC = `callbox/v1/${DEVICE}/cmd/req`;

const logs = new MemoryLogStream();
setupLogging({ level: 'info', destination: logs });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup() {
  const broker = await startBroker();
  cleanups.push(() => broker.close());
  broker.accounts = new Map([
    [`claim:${SERIAL}`, SECRET],
    ['fleet:core', 'x'],
    [DEVICE, DEVICE_PW],
  ]);
  const fleet = await FakeFleet.start(broker.fleetUrl);
  cleanups.push(() => fleet.close());
  fleet.approvals.set(SERIAL, { deviceId: DEVICE, password: DEVICE_PW });
  const dataDir = mkdtempSync(join(tmpdir(), 'callbox-expiry-'));
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  return { broker, fleet, dataDir };
}

function startBox(broker: TestBroker, dataDir: string) {
  const config = loadDeviceConfig(
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
  const box = new Box({ config, softwareVersion: 'test-1' });
  const sent: string[] = [];
  box.handle('sms.send', ({ text }) => {
    sent.push(text);
    return { parts: 1, references: [sent.length] };
  });
  cleanups.push(() => box.stop());
  return { box, sent };
}

describe('command expiry', () => {
  it('a command that reaches the box after its expiry is refused with the expiry and the box clock; a fresh one runs', async () => {
    const { broker, fleet, dataDir } = await setup();
    const { box, sent } = startBox(broker, dataDir);
    await box.start();
    await waitFor(() => box.state === 'online', 'online', 20_000);

    // The box is cut off; the broker queues both commands in its persistent session.
    await broker.down();
    await waitFor(() => box.state !== 'online', 'box offline', 20_000);
    const sentAt = Date.now();
    const stale = fleet.commands
      .request(TOPIC, 'sms.send', { to: '+15550003333', text: 'stale' }, { timeoutMs: 15_000, expiresInMs: 1000 })
      .catch((e: unknown) => e);
    const fresh = fleet.commands.request(
      TOPIC,
      'sms.send',
      { to: '+15550003333', text: 'fresh' },
      { timeoutMs: 15_000, expiresInMs: 60_000 },
    );
    await waitFor(() => Date.now() > sentAt + 1500, 'the first command to expire', 20_000);
    await broker.up();

    expect(await fresh).toEqual({ parts: 1, references: [1] });
    const refused = await stale;
    expect(isCallboxError(refused, ErrorCode.RequestExpired)).toBe(true);
    const e = refused as CallboxError;
    expect(e.message).toMatch(/sms\.send expired at \S+ \(sent at \S+\); this box's clock says \S+: not run/);
    expect(e.details).toMatchObject({ method: 'sms.send', remote: 'RequestExpired' });
    const d = e.details as { expiresAt: string; responderTime: string; sentAt: string };
    expect(Date.parse(d.responderTime)).toBeGreaterThan(Date.parse(d.expiresAt));
    expect(Date.parse(d.expiresAt) - Date.parse(d.sentAt)).toBe(1000);
    expect(sent).toEqual(['fresh']);
  }, 60_000);

  it('a refusal that comes after the requester gave up is logged at the fleet, not lost', async () => {
    const { broker, fleet, dataDir } = await setup();
    const { box, sent } = startBox(broker, dataDir);
    await box.start();
    await waitFor(() => box.state === 'online', 'online', 20_000);
    await broker.down();
    await waitFor(() => box.state !== 'online', 'box offline', 20_000);
    const gaveUp = await fleet.commands
      .request(TOPIC, 'sms.send', { to: '+15550003333', text: 'late' }, { timeoutMs: 300 })
      .catch((err: unknown) => err);
    expect(isCallboxError(gaveUp, ErrorCode.RequestTimeout)).toBe(true);
    await broker.up();
    await waitFor(
      () => logs.lines.some((l) => l.ns === 'test:fake-fleet' && String(l.msg).startsWith('late refusal of sms.send')),
      'the late refusal in the fleet log',
      20_000,
    );
    const line = logs.lines.find((l) => String(l.msg).startsWith('late refusal of sms.send'));
    expect(line).toMatchObject({ code: ErrorCode.RequestExpired, method: 'sms.send', gaveUpAfterMs: 300 });
    expect(line?.details).toMatchObject({ method: 'sms.send' });
    expect(sent).toEqual([]);
  }, 60_000);

  it('a version 1 request (an older fleet) has no expiry and runs; a kept answer outlives the expiry', async () => {
    const { broker, fleet, dataDir } = await setup();
    const first = startBox(broker, dataDir);
    await first.box.start();
    await waitFor(() => first.box.state === 'online', 'online', 20_000);
    const replies = new Map<string, { ok: boolean; result?: unknown; error?: { code: number } }>();
    fleet.client.on('message', (t, p) => {
      if (!t.endsWith('/cmd/res')) return;
      const r = JSON.parse(p.toString()) as { id: string; ok: boolean };
      replies.set(r.id, r);
    });
    const raw = (body: Record<string, unknown>) => fleet.client.publishAsync(TOPIC, JSON.stringify(body), { qos: 1 });
    const params = { to: '+15550003333', text: 'v1' };
    const long = new Date(Date.now() - 3_600_000).toISOString(); // sent an hour ago
    const v1 = newRequestId();
    await raw({ v: 1, id: v1, method: 'sms.send', params, sentAt: long, timeoutMs: 1000 });
    await waitFor(() => replies.has(v1), 'the answer to the v1 request', 20_000);
    expect(replies.get(v1)).toMatchObject({ ok: true, result: { parts: 1 } });
    expect(first.sent).toEqual(['v1']);

    // A v2 request without expiresAt is malformed.
    const noExpiry = newRequestId();
    await raw({ v: 2, id: noExpiry, method: 'sms.send', params, sentAt: new Date().toISOString() });
    await waitFor(() => replies.has(noExpiry), 'the answer to the malformed request', 20_000);
    expect(replies.get(noExpiry)).toMatchObject({ ok: false, error: { code: ErrorCode.ValidationFailed } });

    // It ran; after a restart (nothing in memory) the same id arrives again, now past its expiry:
    // the kept answer, not "expired" (which would tell the fleet it did not run).
    const ran = newRequestId();
    const soon = new Date(Date.now() + 1000).toISOString();
    await raw({ v: 2, id: ran, method: 'sms.send', params, sentAt: new Date().toISOString(), expiresAt: soon });
    await waitFor(() => replies.has(ran), 'the answer before the restart', 20_000);
    const before = replies.get(ran);
    expect(before).toMatchObject({ ok: true });
    await first.box.stop();
    replies.delete(ran);
    await waitFor(() => Date.now() > Date.parse(soon) + 100, 'the expiry to pass', 20_000);
    const second = startBox(broker, dataDir);
    await second.box.start();
    await waitFor(() => second.box.state === 'online', 'online again', 20_000);
    await raw({ v: 2, id: ran, method: 'sms.send', params, sentAt: new Date().toISOString(), expiresAt: soon });
    await waitFor(() => replies.has(ran), 'the answer after the restart', 20_000);
    expect(replies.get(ran)).toEqual(before);
    expect(second.sent).toEqual([]);
    // And a new one past its expiry is refused.
    const stale = newRequestId();
    await raw({ v: 2, id: stale, method: 'sms.send', params, sentAt: long, expiresAt: soon });
    await waitFor(() => replies.has(stale), 'the refusal', 20_000);
    expect(replies.get(stale)).toMatchObject({ ok: false, error: { code: ErrorCode.RequestExpired } });
    expect(second.sent).toEqual([]);
  }, 60_000);
});

describe('command expiry through the fleet and its CLI', () => {
  it('`fleet boxes command --expires` sends the expiry; a box whose clock is past it says so, and the CLI shows it', async () => {
    const tf = await startTestFleet();
    cleanups.push(() => tf.close());
    const creds = await provisionBox(tf, 'CB-EXP-CLI-1');
    const c = await connectClient(tf.url, creds);
    cleanups.push(() => c.endAsync(true));
    const requests: RpcRequest[] = [];
    c.on('message', (_t, p) => requests.push(JSON.parse(p.toString()) as RpcRequest));
    let reboots = 0;
    // A box whose clock runs an hour ahead: every command it gets is already past its expiry.
    const responder = new RpcResponder(
      c,
      DEVICE_COMMANDS,
      {
        reboot: () => {
          reboots++;
          return { scheduledAt: new Date().toISOString() };
        },
      },
      { requestFilter: deviceTopics(creds.deviceId).cmdReq, side: 'this box', now: () => Date.now() + 3_600_000 },
    );
    await responder.start();
    let out = '';
    let err = '';
    const code = await runCli(
      ['--url', tf.url, 'boxes', 'command', 'CB-EXP-CLI-1', 'reboot', '--wait', '10000', '--expires', '60'],
      {
        out: (s) => {
          out += s;
        },
        err: (s) => {
          err += s;
        },
        env: { CALLBOX_OPS_PASSWORD: tf.adminPassword },
      },
    );
    expect(code).toBe(6);
    expect(out).toBe('');
    expect(err).toMatch(/reboot expired at \S+ \(sent at \S+\); this box's clock says \S+: not run/);
    expect(reboots).toBe(0);
    const req = requests.find((r) => r.method === 'reboot');
    expect(req).toMatchObject({ v: 2, timeoutMs: 10_000 });
    expect(Date.parse(req?.expiresAt ?? '') - Date.parse(req?.sentAt ?? '')).toBe(60_000);
    await responder.stop();
  }, 60_000);
});
