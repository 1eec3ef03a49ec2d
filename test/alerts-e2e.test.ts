/**
 * End-to-end alert scenarios: boxes -> the real fleet (supervised embedded
 * aedes broker, ingest, presence, SQLite) -> the alert engine -> a local
 * webhook receiver (node http, ephemeral port), a local SMTP server
 * (smtp-server) and SMS sent through a box.
 *
 * The boxes are mqtt.js clients with real device credentials (provisioned
 * by claim) that speak the box's side of the contract: events, retained
 * status with a last will, and answers to 'sms.send', 'forwarding.set' and
 * 'panic.ack' through the shared RpcResponder, so the fleet side can be
 * driven precisely (several boxes, one killed without a goodbye); the same
 * panic and rollover scenarios with the whole simulated box and its modem
 * emulator are in alerts-box-rig.test.ts.
 *
 * Timers are real; the engine's clock is injected so a test can jump over
 * escalation waits and grace times instead of sleeping through them.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clinicAlertSettings } from '../fleet/alerts/config.js';
import { type Alerts, startAlerts } from '../fleet/alerts/index.js';
import { verifyWebhook } from '../fleet/channels/webhook.js';
import type { Clinic } from '../fleet/store/types.js';
import type { EventBody, EventType } from '../shared/contract/events.js';
import { DEVICE_COMMANDS } from '../shared/contract/rpc.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId, newEventId } from '../shared/ids.js';
import { RpcResponder } from '../shared/rpc.js';
import { provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';

const MIN = 60_000;
const ALICE = '+15550001001';
const BOB = '+15550001002';
const SERVICE = '+15550009999';
const HOOK_SECRET = 'e2e-webhook-secret';
const ALL_DAY = [{ open: '00:00', close: '24:00' }];

class TestBox {
  readonly sms: { to: string; text: string }[] = [];
  readonly forwarding: { enabled: boolean; number?: string | undefined }[] = [];
  readonly panicAcks: string[] = [];
  private seq = 0;
  private readonly bootId = newBootId();
  client!: MqttClient;

  constructor(
    readonly deviceId: string,
    private readonly creds: { username: string; password: string },
    private readonly url: string,
  ) {}

  async connect(): Promise<void> {
    const t = deviceTopics(this.deviceId);
    this.client = mqtt.connect(this.url, {
      ...this.creds,
      clientId: `box-${this.deviceId}-${Math.random().toString(16).slice(2, 6)}`,
      reconnectPeriod: 0,
      will: {
        topic: t.status,
        payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', at: new Date().toISOString(), reason: 'will' })),
        qos: 1,
        retain: true,
      },
    });
    await once(this.client as unknown as NodeJS.EventEmitter, 'connect');
    const responder = new RpcResponder(
      this.client,
      DEVICE_COMMANDS,
      {
        'sms.send': (p) => {
          this.sms.push(p);
          return { parts: 1, references: [this.sms.length] };
        },
        'forwarding.set': (p) => {
          this.forwarding.push({ enabled: p.enabled, number: p.number });
          return {
            reason: 'unconditional' as const,
            enabled: p.enabled,
            number: p.enabled ? (p.number ?? null) : null,
            confirmed: true,
          };
        },
        'panic.ack': (p) => {
          this.panicAcks.push(p.panicId);
          return { acknowledged: true };
        },
      },
      { requestFilter: t.cmdReq },
    );
    await responder.start();
    await this.client.publishAsync(
      t.status,
      JSON.stringify({ v: 1, state: 'online', at: new Date().toISOString(), bootId: this.bootId }),
      { qos: 1, retain: true },
    );
  }

  /** Drop off the network: no DISCONNECT, so the broker publishes the will. */
  kill(): void {
    this.client.stream.destroy();
    this.client.end(true);
  }

  async event<K extends EventType>(type: K, body: EventBody<K>): Promise<void> {
    this.seq++;
    const e = {
      v: 1,
      id: newEventId(),
      deviceId: this.deviceId,
      bootId: this.bootId,
      seq: this.seq,
      at: new Date().toISOString(),
      type,
      body,
    };
    await this.client.publishAsync(deviceTopics(this.deviceId).events, JSON.stringify(e), { qos: 1 });
  }
}

interface Hook {
  condition: string;
  alertId: string;
  dedupKey: string;
  text: string;
  occurrences: number;
}

describe('alerts end to end', () => {
  let tf: TestFleet;
  let alerts: Alerts;
  let clinic: Clinic;
  let main: TestBox;
  let second: TestBox;
  let webhookServer: Server;
  let smtp: SMTPServer;
  const hooks: Hook[] = [];
  const mails: { to: string[]; data: string }[] = [];
  const clock = { offset: 0, now: () => Date.now() + clock.offset };
  let alertConfig: Parameters<typeof startAlerts>[0]['config'];

  beforeAll(async () => {
    webhookServer = createServer((req, res) => {
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
        if (!ok) {
          res.writeHead(401).end();
          return;
        }
        hooks.push(JSON.parse(body) as Hook);
        res.writeHead(204).end();
      });
    });
    webhookServer.listen(0, '127.0.0.1');
    await once(webhookServer, 'listening');
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, cb) {
        let data = '';
        stream.on('data', (c: Buffer) => {
          data += c.toString();
        });
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
          cb();
        });
      },
    });
    smtp.listen(0, '127.0.0.1');
    await once(smtp.server, 'listening');

    tf = await startTestFleet({ presence: { offlineAfterS: 600 } });
    const org = await tf.fleet.store.createOrganisation('Acme Health');
    clinic = await tf.fleet.store.createClinic({
      organisationId: org.id,
      name: 'Main St',
      timezone: 'America/New_York',
      phoneNumbers: [],
      answeringService: SERVICE,
      contacts: [
        { name: 'alice', phone: ALICE, email: 'alice@clinic.test' },
        { name: 'bob', phone: BOB, email: 'bob@clinic.test' },
      ],
    });
    const boxes: TestBox[] = [];
    for (const serial of ['E2E-MAIN', 'E2E-SECOND']) {
      const p = await provisionBox(tf, serial);
      await tf.admin.call('boxes.assign', { box: serial, clinicId: clinic.id });
      const b = new TestBox(p.deviceId, p, tf.url);
      await b.connect();
      boxes.push(b);
    }
    [main, second] = boxes as [TestBox, TestBox];
    alertConfig = {
      webhooks: [
        { url: `http://127.0.0.1:${(webhookServer.address() as AddressInfo).port}/hook`, secret: HOOK_SECRET },
      ],
      smtpUrl: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`,
      publicUrl: 'http://fleet.test',
      linkSecret: 'e2e-link-secret',
      sweepS: 1,
      webhookBackoffMs: 50,
      smsTimeoutMs: 3000,
      forwardingTimeoutMs: 3000,
    };
    alerts = await startAlerts({
      bus: tf.fleet.bus,
      store: tf.fleet.store,
      commands: tf.fleet.commands,
      storeConfig: tf.fleet.config.store,
      config: alertConfig,
      isOnline: (id) => tf.fleet.presence.isOnline(id),
      clock,
    });
    await alerts.engine.putSettings(
      clinic.id,
      clinicAlertSettings({
        hours: { mon: ALL_DAY, tue: ALL_DAY, wed: ALL_DAY, thu: ALL_DAY, fri: ALL_DAY, sat: ALL_DAY, sun: ALL_DAY },
        policies: {
          critical: {
            steps: [
              { to: ['alice'], channels: ['sms', 'webhook'], waitMin: 2 },
              { to: ['bob'], channels: ['sms', 'email'], waitMin: 5 },
            ],
            repeat: 3,
          },
        },
        rules: { missedCalls: { count: 3, windowMin: 10 } },
      }),
      'test',
    );
  }, 30_000);

  afterAll(async () => {
    await alerts?.stop();
    for (const b of [main, second]) b?.client.end(true);
    await tf?.close();
    await new Promise<void>((r) => smtp.close(() => r()));
    webhookServer.closeAllConnections();
    await new Promise<void>((r) => webhookServer.close(() => r()));
  });

  const jump = async (ms: number) => {
    clock.offset += ms;
    await alerts.engine.kick();
    await alerts.engine.idle();
  };
  /** Wait until the alert's step n-1 has finished (the box answered, the webhook took it). */
  const stepDone = (alertId: string | undefined, n: number) =>
    expect.poll(async () => (await alerts.store.getAlert(alertId ?? ''))?.nextStep, { timeout: 5000 }).toBe(n);
  const boxSms = () => [...main.sms, ...second.sms].map((s) => s.to);

  it('panic: step 1 at once, step 2 when nobody acknowledges, stops at an SMS reply', async () => {
    const panicId = newEventId();
    await main.event('panic.pressed', { panicId, source: 'gpio:panic' });
    await expect.poll(() => hooks.filter((h) => h.condition === 'panic').length).toBe(1);
    await expect.poll(() => boxSms()).toEqual([ALICE]);
    const alert = await alerts.store.getActive(clinic.id, 'panic');
    expect(alert?.text).toContain('PANIC at Main St');
    const [sms] = [...main.sms, ...second.sms];
    expect(sms?.text).toContain(`Reply ACK ${alert?.shortCode}`);
    expect(sms?.text).toMatch(/http:\/\/fleet\.test\/alerts\/link\?t=/);
    await stepDone(alert?.id, 1);

    await jump(2 * MIN);
    await expect.poll(() => boxSms()).toEqual([ALICE, BOB]);
    await expect.poll(() => mails.map((m) => m.to[0]), { timeout: 5000 }).toEqual(['bob@clinic.test']);

    await second.event('sms.received', { from: BOB, text: `ack ${alert?.shortCode}`, at: new Date().toISOString() });
    await expect.poll(async () => (await alerts.store.getAlert(alert?.id ?? ''))?.state).toBe('acknowledged');
    await expect.poll(() => main.panicAcks).toEqual([panicId]);
    await jump(10 * MIN);
    expect(boxSms()).toEqual([ALICE, BOB]);
    await alerts.engine.resolve(alert?.id ?? '', 'test');
  });

  it('the engine killed mid-escalation resumes it after a restart with no step lost', async () => {
    main.sms.length = 0;
    second.sms.length = 0;
    await main.event('panic.pressed', { panicId: newEventId(), source: 'hid:panic' });
    await expect.poll(() => boxSms()).toEqual([ALICE]);
    const alert = await alerts.store.getActive(clinic.id, 'panic');
    await stepDone(alert?.id, 1);
    await alerts.engine.stop({ wait: false }); // killed: nothing orderly
    await alerts.stop();
    clock.offset += 3 * MIN; // down past step 2's time
    alerts = await startAlerts({
      bus: tf.fleet.bus,
      store: tf.fleet.store,
      commands: tf.fleet.commands,
      storeConfig: tf.fleet.config.store,
      config: alertConfig,
      isOnline: (id) => tf.fleet.presence.isOnline(id),
      clock,
    });
    await alerts.engine.kick();
    await alerts.engine.idle();
    await expect.poll(() => boxSms()).toEqual([ALICE, BOB]);
    const deliveries = await alerts.store.listDeliveries(alert?.id ?? '');
    const sent = deliveries.filter((d) => d.status === 'sent').map((d) => [d.step, d.channel, d.target]);
    expect(sent.sort((a, b) => String(a).localeCompare(String(b)))).toEqual([
      [0, 'sms', 'alice'],
      [0, 'webhook', expect.stringMatching(/^webhook1:/)],
      [1, 'email', 'bob'],
      [1, 'sms', 'bob'],
    ]);
    await alerts.engine.resolve(alert?.id ?? '', 'test');
  });

  it('a panic press stored while the engine is down (a fleet restart) is raised when it starts', async () => {
    main.sms.length = 0;
    second.sms.length = 0;
    await alerts.stop(); // the fleet stores events before its features start again
    const panicId = newEventId();
    await main.event('panic.pressed', { panicId, source: 'gpio:panic' });
    await expect
      .poll(
        async () =>
          (await tf.fleet.store.listEvents({ deviceId: main.deviceId, type: 'panic.pressed', limit: 1 }))[0]?.body,
      )
      .toMatchObject({ panicId });
    alerts = await startAlerts({
      bus: tf.fleet.bus,
      store: tf.fleet.store,
      commands: tf.fleet.commands,
      storeConfig: tf.fleet.config.store,
      config: alertConfig,
      isOnline: (id) => tf.fleet.presence.isOnline(id),
      clock,
    });
    await expect
      .poll(async () => (await alerts.store.getActive(clinic.id, 'panic'))?.details.panicId, { timeout: 10_000 })
      .toBe(panicId);
    await expect.poll(() => boxSms(), { timeout: 10_000 }).toEqual([ALICE]);
    const alert = await alerts.store.getActive(clinic.id, 'panic');
    await stepDone(alert?.id, 1);
    await alerts.engine.resolve(alert?.id ?? '', 'test');
  });

  it('a storm of missed calls is one alert with a count', async () => {
    clock.offset = 0; // the window counts calls by the time they happened on the box
    const before = hooks.length;
    for (let i = 0; i < 8; i++) {
      await main.event('call.ended', {
        callId: `storm-${i}`,
        number: '+15551234567',
        withheld: false,
        outcome: 'missed',
        rings: 6,
        timeToAnswerMs: null,
        durationMs: 0,
        repeatCaller: i > 0,
        inHours: true,
      });
    }
    await expect.poll(async () => (await alerts.store.getActive(clinic.id, 'missed_calls'))?.occurrences).toBe(8);
    const list = await alerts.store.listAlerts({ clinicId: clinic.id, condition: 'missed_calls' });
    expect(list).toHaveLength(1);
    await expect.poll(() => hooks.slice(before).filter((h) => h.condition === 'missed_calls').length).toBe(1);
    const first = hooks.slice(before).find((h) => h.condition === 'missed_calls');
    expect(first?.text).toContain('did not answer 3 calls in 10 minutes');
    expect(first?.text).not.toContain('1234567'); // no caller number in the alert
  });

  it('a box offline during hours raises an alert that clears when it returns', async () => {
    second.kill();
    await expect
      .poll(() => alerts.store.listPending().then((p) => p.map((x) => x.key)))
      .toContain(`offline:${second.deviceId}`);
    await jump(4 * MIN);
    expect(await alerts.store.getActive(clinic.id, 'box_offline')).toBeUndefined();
    await jump(2 * MIN);
    const alert = await alerts.store.getActive(clinic.id, 'box_offline');
    expect(alert).toMatchObject({ severity: 'critical', deviceId: second.deviceId });
    await expect.poll(() => hooks.some((h) => h.alertId === alert?.id)).toBe(true);
    await second.connect();
    await expect.poll(async () => (await alerts.store.getAlert(alert?.id ?? ''))?.state).toBe('resolved');
  });

  it('rollover on and back, each confirmed by the boxes', async () => {
    const on = await alerts.engine.startRollover(clinic.id, { by: 'ops:carol', reason: 'nobody is at the front desk' });
    expect(on.active).toBe(true);
    expect(on.boxes.map((b) => b.confirmed)).toEqual([true, true]);
    expect(main.forwarding.at(-1)).toEqual({ enabled: true, number: SERVICE });
    expect(second.forwarding.at(-1)).toEqual({ enabled: true, number: SERVICE });
    const alert = await alerts.store.getActive(clinic.id, 'rollover');
    expect(alert?.text).toMatch(
      /^calls for Main St are rolling over to the answering service \(…9999\) since .+ because nobody is at the front desk$/,
    );
    await expect.poll(() => hooks.some((h) => h.alertId === alert?.id)).toBe(true);
    const off = await alerts.engine.stopRollover(clinic.id, 'ops:carol');
    expect(off).toMatchObject({ active: false, endedBy: 'ops:carol' });
    expect(main.forwarding.at(-1)?.enabled).toBe(false);
    expect((await alerts.store.getAlert(alert?.id ?? ''))?.state).toBe('resolved');
  });
});
