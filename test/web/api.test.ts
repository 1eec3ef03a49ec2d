/**
 * The fleet's HTTP API (fleet/web) over real HTTP against a running fleet: sign-in sessions, CSRF, the
 * sign-in rate limit, the one error shape, roles, a clinic user kept to its clinic (HTTP and MQTT), the
 * audit rows of acknowledgements and rollovers, voicemail audio with Range, the OpenAPI document.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlertsFeature, alertsFeature } from '../../fleet/alerts/feature.js';
import { OpsClient } from '../../fleet/ops-client.js';
import type { Clinic } from '../../fleet/store/types.js';
import { voicemailFeature } from '../../fleet/voicemail/feature.js';
import { type WebFeature, webFeature } from '../../fleet/web/server.js';
import { DEVICE_COMMANDS } from '../../shared/contract/rpc.js';
import { deviceTopics } from '../../shared/contract/topics.js';
import { newBootId, newEventId } from '../../shared/ids.js';
import { RpcResponder } from '../../shared/rpc.js';
import { waitFor } from '../../shared/wait.js';
import { connectClient, provisionBox, runFleetCli, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { signIn, type WebSession } from '../helpers/web.js';

type ErrorBody = { error: { code: string; message: string; field?: string; value?: unknown; accepted?: string } };

describe('fleet HTTP API', () => {
  let tf: TestFleet;
  let base: string;
  let north: Clinic;
  let south: Clinic;
  let box: { deviceId: string; username: string; password: string };
  let boxClient: MqttClient;
  let admin: WebSession;
  const passwords: Record<string, string> = {};
  const pw = (user: string) => passwords[user] ?? '';

  beforeAll(async () => {
    tf = await startTestFleet(
      { http: { loginPerMinute: 12 } },
      { features: [webFeature(), alertsFeature(), voicemailFeature()] },
    );
    base = (tf.fleet.feature<WebFeature>('web') as WebFeature).url;
    const clinic = (name: string) =>
      tf.fleet.store.createClinic({
        organisationId: null,
        name,
        timezone: 'Europe/Berlin',
        phoneNumbers: [],
        answeringService: '+15550009999',
        contacts: [],
      });
    north = await clinic('North');
    south = await clinic('South');
    box = await provisionBox(tf, 'WEB-A001');
    await tf.admin.call('boxes.assign', { box: 'WEB-A001', clinicId: north.id });
    await tf.admin.call('boxes.register', { serial: 'WEB-B001', clinicId: south.id });
    boxClient = await connectClient(tf.url, box);
    await new RpcResponder(
      boxClient,
      DEVICE_COMMANDS,
      {
        'forwarding.set': (p) => ({
          reason: 'unconditional' as const,
          enabled: p.enabled,
          number: p.number ?? null,
          confirmed: true,
        }),
        'panic.ack': () => ({ acknowledged: true }),
      },
      { requestFilter: deviceTopics(box.deviceId).cmdReq },
    ).start();
    await boxClient.publishAsync(
      deviceTopics(box.deviceId).events,
      JSON.stringify({
        v: 1,
        id: newEventId(),
        deviceId: box.deviceId,
        bootId: newBootId(),
        seq: 1,
        at: new Date().toISOString(),
        type: 'panic.pressed',
        body: { panicId: newEventId(), source: 'gpio:panic' },
      }),
      { qos: 1 },
    );
    passwords.victor = (await tf.admin.call('users.create', { name: 'victor', role: 'viewer' })).password;
    // A clinic manager made with the CLI, its clinic named by name.
    const made = await runFleetCli(
      tf.url,
      ['users', 'create', 'nora', '--role', 'clinic', '--clinic', 'North'],
      tf.adminPassword,
    );
    expect(made.code, made.err).toBe(0);
    passwords.nora = /password \(shown once\): (\S+)/.exec(made.out)?.[1] ?? '';
    expect(made.out).toContain(`clinic ${north.id}`);
    const sam = await tf.admin.call('users.create', { name: 'sam', role: 'clinic', clinic: south.id });
    passwords.sam = sam.password;
    admin = await signIn(base, 'admin', tf.adminPassword);
  }, 60_000);

  afterAll(async () => {
    boxClient?.end(true);
    await tf?.close();
  });

  it('signs in and out: cookie HttpOnly SameSite=Strict, sign-out needs the CSRF token, then 401', async () => {
    const r = await fetch(`${base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'victor', password: pw('victor') }),
    });
    expect(r.status).toBe(200);
    const cookie = r.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^callbox_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const s = await signIn(base, 'victor', pw('victor'));
    const me = await s.get('/api/session');
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ user: 'victor', role: 'viewer', clinicId: null });
    const noToken = await fetch(`${base}/api/session`, { method: 'DELETE', headers: { cookie: s.cookie } });
    expect(noToken.status).toBe(403);
    expect(((await noToken.json()) as ErrorBody).error.code).toBe('CsrfRefused');
    expect((await s.del('/api/session')).status).toBe(204);
    const after = await s.get('/api/session');
    expect(after.status).toBe(401);
    expect(((await after.json()) as ErrorBody).error.code).toBe('NoSession');
  });

  it('refuses a wrong password and an unknown user alike (401), and names the missing field (400)', async () => {
    const post = (body: unknown) =>
      fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const wrong = await post({ user: 'victor', password: 'not-it' });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as ErrorBody).error.code).toBe('SignInFailed');
    expect((await post({ user: 'nobody', password: 'x' })).status).toBe(401);
    const missing = await post({ user: 'victor' });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as ErrorBody).error).toMatchObject({ code: 'ValidationFailed', field: 'password' });
  });

  it('rate-limits sign-in per address and user: 429 with Retry-After', async () => {
    const post = () =>
      fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'mallory', password: 'guess' }),
      });
    for (let i = 0; i < 12; i++) expect((await post()).status).toBe(401);
    const limited = await post();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as ErrorBody).error.code).toBe('RateLimited');
    // Another user name from the same address is not blocked by mallory's attempts.
    expect((await signIn(base, 'victor', pw('victor'))).role).toBe('viewer');
  });

  it('refuses a forged cookie, and ends the session a browser brought to sign-in (fixation)', async () => {
    const forged = await fetch(`${base}/api/v1/boxes.list`, {
      headers: { cookie: 'callbox_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    expect(forged.status).toBe(401);
    const first = await signIn(base, 'victor', pw('victor'));
    const again = await fetch(`${base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: first.cookie },
      body: JSON.stringify({ user: 'victor', password: pw('victor') }),
    });
    expect(again.status).toBe(200);
    expect((again.headers.get('set-cookie') ?? '').split(';')[0]).not.toBe(first.cookie);
    expect((await first.get('/api/session')).status).toBe(401);
  });

  it('needs the CSRF token on every change, and checks it', async () => {
    const body = { clinicId: north.id, contacts: [{ name: 'Dr. Ada' }] };
    const none = await admin.post('/api/v1/clinics.update', body, { csrf: false });
    expect(none.status).toBe(403);
    expect(((await none.json()) as ErrorBody).error.code).toBe('CsrfRefused');
    const bad = await fetch(`${base}/api/v1/clinics.update`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'content-type': 'application/json', 'x-csrf-token': 'forged' },
      body: JSON.stringify(body),
    });
    expect(bad.status).toBe(403);
    const ok = await admin.post('/api/v1/clinics.update', body);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ id: north.id, contacts: [{ name: 'Dr. Ada' }] });
  });

  it('answers bad params with 400 naming the field, the value and what is accepted', async () => {
    const r = await admin.get('/api/v1/boxes.list?limit=0');
    expect(r.status).toBe(400);
    const e = ((await r.json()) as ErrorBody).error;
    expect(e).toMatchObject({ code: 'ValidationFailed', field: 'limit' });
    expect(e.accepted).toContain('>= 1');
    const unknown = await admin.get('/api/v1/boxes.list?colour=red');
    expect(((await unknown.json()) as ErrorBody).error.field).toBe('colour');
    expect((await admin.get('/api/v1/no.such')).status).toBe(404);
  });

  it('refuses a method above the caller role (403) and anything without a session (401)', async () => {
    const viewer = await signIn(base, 'victor', pw('victor'));
    expect((await viewer.get('/api/v1/boxes.list')).status).toBe(200);
    const r = await viewer.post('/api/v1/clinics.create', {
      name: 'X',
      timezone: 'UTC',
      phoneNumbers: [],
      contacts: [],
    });
    expect(r.status).toBe(403);
    expect(((await r.json()) as ErrorBody).error).toMatchObject({ code: 'NotAuthorized' });
    for (const path of ['/api/v1/boxes.list', '/api/v1/events.list', `/api/v1/voicemail/${newEventId()}/audio`]) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    }
  });

  it('keeps a clinic user to its clinic, over HTTP and over MQTT', async () => {
    const nora = await signIn(base, 'nora', pw('nora'));
    expect(nora).toMatchObject({ role: 'clinic', clinicId: north.id });
    const boxes = (await (await nora.get('/api/v1/boxes.list')).json()) as { serial: string }[];
    expect(boxes.map((b) => b.serial)).toEqual(['WEB-A001']);
    const clinics = (await (await nora.get('/api/v1/clinics.list')).json()) as { id: string }[];
    expect(clinics.map((c) => c.id)).toEqual([north.id]);
    for (const path of [
      `/api/v1/boxes.list?clinicId=${south.id}`,
      `/api/v1/clinics.show?clinicId=${south.id}`,
      '/api/v1/boxes.show?box=WEB-B001',
      `/api/v1/alerts.list?clinicId=${south.id}`,
      '/api/v1/events.list',
      '/api/v1/audit.list',
    ]) {
      const r = await nora.get(path);
      expect(r.status, path).toBe(403);
      expect(((await r.json()) as ErrorBody).error.code, path).toBe('NotAuthorized');
    }
    expect((await nora.get('/api/v1/boxes.show?box=WEB-A001')).status).toBe(200);
    expect((await nora.post('/api/v1/users.create', { name: 'eve', role: 'admin' })).status).toBe(403);
    const mqtt = await OpsClient.connect(tf.url, 'nora', pw('nora'));
    try {
      await expect(mqtt.call('boxes.list', { clinicId: south.id })).rejects.toThrow(/not of clinic/);
      expect((await mqtt.call('boxes.list', {})).map((b) => b.serial)).toEqual(['WEB-A001']);
    } finally {
      await mqtt.close();
    }
  });

  it('writes acknowledgements and rollovers to the audit log (HTTP and MQTT)', async () => {
    const feature = tf.fleet.feature<AlertsFeature>('alerts') as AlertsFeature;
    const alert = await waitFor(
      async () => (await feature.alerts?.store.listAlerts({ state: 'active', clinicId: north.id }))?.[0],
      'the panic alert',
    );
    const ack = await admin.post('/api/v1/alerts.ack', { code: alert.shortCode });
    expect(ack.status).toBe(200);
    expect(await ack.json()).toMatchObject({ state: 'acknowledged', ackedBy: 'ops:admin' });
    const start = await admin.post('/api/v1/rollover.start', { clinicId: north.id, reason: 'staff meeting' });
    expect(start.status, await start.clone().text()).toBe(200);
    await tf.admin.call('rollover.stop', { clinicId: north.id });
    const audit = (await (await admin.get('/api/v1/audit.list?limit=50')).json()) as {
      action: string;
      actor: string;
      target: string;
    }[];
    expect(audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: 'alerts.ack', actor: 'ops:admin', target: `alert:${alert.id}` }),
        expect.objectContaining({ action: 'rollover.start', actor: 'ops:admin', target: `clinic:${north.id}` }),
        expect.objectContaining({ action: 'rollover.stop', actor: 'ops:admin', target: `clinic:${north.id}` }),
        expect.objectContaining({ action: 'session.signIn', actor: 'ops:admin' }),
      ]),
    );
  });

  it('streams a stored voicemail as audio/wav with Range, to its clinic only', async () => {
    const id = newEventId();
    const wav = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(96, 7)]);
    const dir = join(tf.fleet.config.voicemail.dir, box.deviceId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${id}.wav`), tf.fleet.patient.sealBytes(wav));
    const whole = await admin.get(`/api/v1/voicemail/${id}/audio`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('audio/wav');
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(wav)).toBe(true);
    const nora = await signIn(base, 'nora', pw('nora'));
    const part = await nora.get(`/api/v1/voicemail/${id}/audio`, { range: 'bytes=0-3' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 0-3/${wav.length}`);
    expect(Buffer.from(await part.arrayBuffer()).toString()).toBe('RIFF');
    const tail = await nora.get(`/api/v1/voicemail/${id}/audio`, { range: 'bytes=-4' });
    expect(Buffer.from(await tail.arrayBuffer()).equals(wav.subarray(-4))).toBe(true);
    expect((await nora.get(`/api/v1/voicemail/${id}/audio`, { range: `bytes=${wav.length}-` })).status).toBe(416);
    const sam = await signIn(base, 'sam', pw('sam'));
    expect((await sam.get(`/api/v1/voicemail/${id}/audio`)).status).toBe(403);
    expect((await sam.post('/api/v1/voicemail.heard', { voicemailId: id })).status).toBe(403);
    expect((await nora.post('/api/v1/voicemail.heard', { voicemailId: id })).status).toBe(200);
    expect((await admin.get(`/api/v1/voicemail/${newEventId()}/audio`)).status).toBe(404);
  });

  it('serves the OpenAPI document made from the schemas', async () => {
    const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.paths['/api/v1/boxes.list']?.get).toBeDefined();
    expect(doc.paths['/api/v1/clinics.create']?.post).toBeDefined();
    expect(doc.paths['/api/v1/alerts.ack']?.post).toBeDefined();
    expect(doc.paths['/api/session']?.post).toBeDefined();
  });
});
