/**
 * Alert channels on real transports: the webhook against a node http server
 * (signature, retries with backoff, timeout, no retry on 4xx), email through
 * a local SMTP server (smtp-server), SMS through a box over a real aedes
 * broker (first box silent, second answers), signed links and the fastify
 * plugin (GET never acknowledges, POST does).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import mqtt from 'mqtt';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { alertsConfig, clinicAlertSettings } from '../fleet/alerts/config.js';
import { AlertEngine } from '../fleet/alerts/engine.js';
import { alertLinksPlugin } from '../fleet/alerts/http.js';
import { AlertLinks } from '../fleet/alerts/links.js';
import { EmailChannel } from '../fleet/channels/email.js';
import { SmsChannel } from '../fleet/channels/sms.js';
import type { Attempt, Notification } from '../fleet/channels/types.js';
import {
  DEDUP_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyWebhook,
  WebhookChannel,
} from '../fleet/channels/webhook.js';
import { DeviceCommands } from '../fleet/commands.js';
import { DEVICE_COMMANDS } from '../shared/contract/rpc.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { RpcResponder } from '../shared/rpc.js';
import { startTestBroker } from './helpers/aedes.js';
import { alertFixture, RecordingChannel } from './helpers/alerts.js';

const note: Notification = {
  alertId: 'a1',
  dedupKey: 'a1:0:0:webhook:webhook1',
  clinicId: 'c1',
  clinicName: 'Main St',
  condition: 'panic',
  severity: 'critical',
  state: 'open',
  text: 'PANIC at Main St',
  subject: '[critical] Main St: panic (code 4821)',
  shortCode: '4821',
  occurrences: 1,
  firstAt: '2026-11-26T15:00:00.000Z',
  lastAt: '2026-11-26T15:00:00.000Z',
  ackUrl: 'http://fleet.test/alerts/a/x',
  resolveUrl: 'http://fleet.test/alerts/a/y',
  step: 0,
  epoch: 0,
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function httpServer(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => handler(req, body, res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

describe('webhook channel', () => {
  it('signs the body, retries 5xx with backoff, and keeps the dedup key', async () => {
    const seen: { status: number; sig: string; ts: string; dedup: string; body: string; at: number }[] = [];
    const url = await httpServer((req, body, res) => {
      const status = seen.length < 2 ? 503 : 204;
      seen.push({
        status,
        sig: String(req.headers[SIGNATURE_HEADER]),
        ts: String(req.headers[TIMESTAMP_HEADER]),
        dedup: String(req.headers[DEDUP_HEADER]),
        body,
        at: Date.now(),
      });
      res.writeHead(status).end();
    });
    const attempts: Attempt[] = [];
    const ch = new WebhookChannel({ timeoutMs: 2000, attempts: 4, backoffMs: 50 });
    const last = await ch.send({ url, secret: 'webhook-secret' }, note, (a) => {
      attempts.push(a);
    });
    expect(last).toMatchObject({ ok: true, attempt: 3, detail: 'HTTP 204' });
    expect(attempts.map((a) => [a.ok, a.error ?? a.detail])).toEqual([
      [false, 'HTTP 503'],
      [false, 'HTTP 503'],
      [true, 'HTTP 204'],
    ]);
    expect(new Set(seen.map((s) => s.dedup))).toEqual(new Set([note.dedupKey]));
    for (const s of seen) expect(verifyWebhook('webhook-secret', s.ts, s.body, s.sig)).toBe(true);
    expect(verifyWebhook('other-secret', seen[0]?.ts ?? '', seen[0]?.body ?? '', seen[0]?.sig ?? '')).toBe(false);
    expect(JSON.parse(seen[0]?.body ?? '{}')).toMatchObject({ type: 'alert', alertId: 'a1', shortCode: '4821' });
    expect((seen[2]?.at ?? 0) - (seen[1]?.at ?? 0)).toBeGreaterThanOrEqual(90); // 50 ms, then 100 ms
  });

  it('gives up after its attempts on a receiver that never answers', async () => {
    const url = await httpServer(() => undefined);
    const attempts: Attempt[] = [];
    const ch = new WebhookChannel({ timeoutMs: 150, attempts: 2, backoffMs: 10 });
    const last = await ch.send({ url, secret: 'webhook-secret' }, note, (a) => {
      attempts.push(a);
    });
    expect(last.ok).toBe(false);
    expect(attempts.map((a) => a.error)).toEqual(['no answer within 150 ms', 'no answer within 150 ms']);
  });

  it('does not retry a 4xx refusal, and reports a refused connection', async () => {
    const url = await httpServer((_req, _body, res) => res.writeHead(401).end());
    const attempts: Attempt[] = [];
    const ch = new WebhookChannel({ timeoutMs: 1000, attempts: 3, backoffMs: 10 });
    await ch.send({ url, secret: 'webhook-secret' }, note, (a) => {
      attempts.push(a);
    });
    expect(attempts.map((a) => a.error)).toEqual(['HTTP 401']);
    const refused: Attempt[] = [];
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await new WebhookChannel({ timeoutMs: 1000, attempts: 1, backoffMs: 10 }).send(
      { url: `http://127.0.0.1:${freePort}/hook`, secret: 'webhook-secret' },
      note,
      (a) => {
        refused.push(a);
      },
    );
    expect(refused[0]?.error).toMatch(/fetch failed \(ECONNREFUSED\)/);
  });
});

describe('email channel', () => {
  it('delivers through an SMTP server with the dedup key as Message-ID and header', async () => {
    const received: { to: string[]; data: string }[] = [];
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, cb) {
        let data = '';
        stream.on('data', (c: Buffer) => {
          data += c.toString();
        });
        stream.on('end', () => {
          received.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
          cb();
        });
      },
    });
    server.listen(0, '127.0.0.1');
    await once(server.server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.server.address() as AddressInfo).port;
    const ch = new EmailChannel({ url: `smtp://127.0.0.1:${port}`, from: 'alerts@callbox.test', backoffMs: 10 });
    cleanups.push(() => ch.close());
    const attempts: Attempt[] = [];
    const last = await ch.send('bob@clinic.test', { ...note, dedupKey: 'a1:0:1:email:bob' }, (a) => {
      attempts.push(a);
    });
    expect(last.ok).toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0]?.to).toEqual(['bob@clinic.test']);
    expect(received[0]?.data).toMatch(/X-Callbox-Dedup-Key: a1:0:1:email:bob/);
    expect(received[0]?.data).toMatch(/Message-ID: <a1.0.1.email.bob@callbox.alerts>/i);
    expect(received[0]?.data).toContain('PANIC at Main St');
    expect(received[0]?.data).toContain('http://fleet.test/alerts/a/x');

    const down = new EmailChannel({ url: 'smtp://127.0.0.1:1', from: 'a@b.test', attempts: 2, backoffMs: 10 });
    const failed: Attempt[] = [];
    await down.send('bob@clinic.test', note, (a) => {
      failed.push(a);
    });
    expect(failed.map((a) => a.ok)).toEqual([false, false]);
    expect(failed[0]?.error).toMatch(/ECONNREFUSED/);
  });
});

describe('SMS channel through boxes', () => {
  it('sends through the first box that answers, recording the silent one', async () => {
    const broker = await startTestBroker();
    cleanups.push(() => broker.close());
    const fleetClient = await mqtt.connectAsync(broker.url, { clientId: 'fleet-test' });
    cleanups.push(() => fleetClient.endAsync(true));
    const commands = new DeviceCommands(5000);
    await commands.start(fleetClient);
    cleanups.push(() => commands.stop());
    // cb-second answers sms.send; cb-main is connected but never answers.
    const box = await mqtt.connectAsync(broker.url, { clientId: 'cb-second' });
    cleanups.push(() => box.endAsync(true));
    const texts: { to: string; text: string }[] = [];
    const responder = new RpcResponder(
      box,
      DEVICE_COMMANDS,
      {
        'sms.send': (p) => {
          texts.push(p);
          return { parts: 1, references: [42] };
        },
      },
      { requestFilter: deviceTopics('cb-second').cmdReq },
    );
    await responder.start();
    const ch = new SmsChannel(commands, async () => ['cb-main', 'cb-second'], { timeoutMs: 300 });
    const attempts: Attempt[] = [];
    const last = await ch.send({ to: '+15550001001', clinicId: 'c1' }, note, (a) => {
      attempts.push(a);
    });
    expect(last).toMatchObject({ ok: true, detail: 'box cb-second, 1 part(s)' });
    expect(attempts.map((a) => a.ok)).toEqual([false, true]);
    expect(attempts[0]?.error).toMatch(/cb-main.*no answer within 300 ms/);
    expect(texts).toEqual([{ to: '+15550001001', text: expect.stringContaining('Reply ACK 4821 to acknowledge') }]);
  });
});

describe('acknowledgement links', () => {
  it('verifies its own tokens and refuses tampered or expired ones', () => {
    const links = new AlertLinks('link-secret', 'http://fleet.test/', 60_000);
    const t = links.token('alert-1', 'ack', 'alice', 1_000);
    expect(links.verify(t, 2_000)).toEqual({ alertId: 'alert-1', action: 'ack', who: 'alice', exp: 61_000, epoch: 0 });
    expect(links.url('alert-1', 'resolve', 'bob')).toMatch(/^http:\/\/fleet\.test\/alerts\/link\?t=[\w-]+\.[\w-]+$/);
    const [payload, sig] = t.split('.');
    const forged = `${Buffer.from(JSON.stringify({ a: 'alert-1', x: 'resolve', w: 'alice', e: 61_000 })).toString('base64url')}.${sig}`;
    expect(() => links.verify(forged, 2_000)).toThrow(/signature is not valid/);
    expect(() => links.verify(`${payload}`, 2_000)).toThrow(/malformed/);
    expect(() => links.verify(t, 62_000)).toThrow(/expired/);
    expect(() => new AlertLinks('other-secret', 'http://x', 60_000).verify(t, 2_000)).toThrow(
      expect.objectContaining({ code: ErrorCode.NotAuthorized }),
    );
  });

  it('shows the alert on GET without acknowledging it, and acknowledges on POST', async () => {
    const fx = await alertFixture();
    cleanups.push(() => fx.close());
    await fx.alerts.putClinicSettings(fx.clinic.id, clinicAlertSettings({}));
    const links = new AlertLinks('link-secret', 'http://fleet.test', 3_600_000);
    const engine = new AlertEngine({
      bus: fx.bus,
      store: fx.store,
      alerts: fx.alerts,
      config: alertsConfig({}),
      channels: { webhook: new RecordingChannel(), email: new RecordingChannel(), sms: new RecordingChannel() },
      links,
    });
    await engine.start();
    cleanups.push(() => engine.stop());
    const { alert } = await engine.raise(fx.clinic.id, 'panic', { severity: 'critical', text: 'PANIC at Main St <b>' });
    const app = Fastify();
    await app.register(alertLinksPlugin, { engine, links });
    cleanups.push(() => app.close());
    const path = `/alerts/link?t=${links.token(alert.id, 'ack', 'alice')}`;
    const page = await app.inject({ method: 'GET', url: path });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('PANIC at Main St &#60;b&#62;');
    expect(page.body).toContain('<form method="post">');
    expect((await fx.alerts.getAlert(alert.id))?.state).toBe('open');
    const done = await app.inject({ method: 'POST', url: path });
    expect(done.statusCode).toBe(200);
    expect(await fx.alerts.getAlert(alert.id)).toMatchObject({ state: 'acknowledged', ackedBy: 'link:alice' });
    const again = await app.inject({ method: 'GET', url: path });
    expect(again.body).toContain('already <strong>acknowledged</strong>');
    const bad = await app.inject({ method: 'POST', url: `${path}x` });
    expect(bad.statusCode).toBe(403);
    const resolve = await app.inject({
      method: 'POST',
      url: `/alerts/link?t=${links.token(alert.id, 'resolve', 'bob')}`,
    });
    expect(resolve.statusCode).toBe(200);
    expect(await fx.alerts.getAlert(alert.id)).toMatchObject({ state: 'resolved', resolvedBy: 'link:bob' });
    await expect(engine.byCode('0000')).rejects.toSatisfy((e) => isCallboxError(e, ErrorCode.AlertNotFound));
  });
});
