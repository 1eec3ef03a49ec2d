/**
 * Provisioning and the ops API over MQTT, end to end with real clients:
 * claims (automatic and by ops), clinics, configuration (validated,
 * versioned, retained, and served to the box on config.get), commands to a
 * box and their answers, roles, and the audit log.
 */
import { once } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpsClient } from '../fleet/ops-client.js';
import type { ClaimResponse, ConfigDesired } from '../shared/contract/messages.js';
import { DEVICE_COMMANDS, FLEET_REQUESTS } from '../shared/contract/rpc.js';
import { claimTopics, deviceTopics } from '../shared/contract/topics.js';
import { ErrorCode } from '../shared/errors.js';
import { newRequestId } from '../shared/ids.js';
import { RpcRequester, RpcResponder } from '../shared/rpc.js';
import { claim, connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';

async function boxClient(tf: TestFleet, creds: { username: string; password: string }): Promise<MqttClient> {
  return connectClient(tf.url, { username: creds.username, password: creds.password });
}

describe('provisioning and the ops API', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('holds an unknown serial as pending until ops approve it, then answers the box', async () => {
    const serial = 'NEW-0001';
    const secret = 'factory-label-secret-1';
    expect((await claim(tf.url, serial, secret)).state).toBe('pending');
    const pending = await tf.admin.call('claims.list', {});
    expect(pending.map((b) => b.serial)).toContain(serial);

    // the box waits on its claim topic; ops approve
    const c = await connectClient(tf.url, { username: `claim:${serial}`, password: secret });
    await c.subscribeAsync(claimTopics(serial).res, { qos: 1 });
    const answer = once(c as unknown as NodeJS.EventEmitter, 'message');
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Elm Street',
      timezone: 'Europe/Berlin',
      phoneNumbers: ['+4930123456'],
      answeringService: '+4930999999',
      contacts: [{ name: 'Dr. Ada', email: 'ada@example.org' }],
    });
    const approved = await tf.admin.call('claims.approve', { serial, clinicId: clinic.id });
    expect(approved).toMatchObject({ claimState: 'approved', deviceId: 'cb-new-0001', clinicId: clinic.id });
    const [, payload] = (await answer) as [string, Buffer];
    const res = JSON.parse(payload.toString()) as ClaimResponse;
    expect(res.state).toBe('approved');
    c.end(true);
    if (res.state !== 'approved') return;
    // its new credentials work; a second claim secret for the same serial does not
    const box = await boxClient(tf, res);
    box.end(true);
    await expect(connectClient(tf.url, { username: `claim:${serial}`, password: 'another-secret' })).rejects.toThrow();

    const audit = await tf.admin.call('audit.list', { target: `box:${serial}` });
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['claims.request', 'claims.approve']));
    const shown = await tf.admin.call('clinics.show', { clinicId: clinic.id });
    expect(shown.boxes.map((b) => b.serial)).toEqual([serial]);
  });

  it('validates configuration, versions it, publishes it retained and serves it on config.get', async () => {
    const creds = await provisionBox(tf, 'CFG-0001');
    await expect(
      tf.admin.call('boxes.setConfig', { box: 'CFG-0001', settings: { clinic: { name: '' } } }),
    ).rejects.toMatchObject({ code: ErrorCode.ValidationFailed, message: expect.stringMatching(/\/clinic\/name/) });
    expect((await tf.admin.call('boxes.show', { box: 'CFG-0001' })).box.desiredVersion).toBe(0);

    const v1 = await tf.admin.call('boxes.setConfig', { box: 'CFG-0001', settings: { clinic: { name: 'One' } } });
    const v2 = await tf.admin.call('boxes.setConfig', { box: creds.deviceId, settings: { clinic: { name: 'Two' } } });
    expect([v1.version, v2.version]).toEqual([1, 2]);

    const box = await boxClient(tf, creds);
    const t = deviceTopics(creds.deviceId);
    const retained = new Promise<ConfigDesired>((resolve) =>
      box.on('message', (topic, p) => {
        if (topic === t.configDesired) resolve(JSON.parse(p.toString()) as ConfigDesired);
      }),
    );
    await box.subscribeAsync(t.configDesired, { qos: 1 });
    const got = await retained;
    expect(got).toMatchObject({ version: 2, settings: { clinic: { name: 'Two' } } });

    const req = new RpcRequester(box, FLEET_REQUESTS, { responseFilter: t.fleetRes, defaultTimeoutMs: 3000 });
    await req.start();
    const full = await req.request(t.fleetReq, 'config.get', {});
    expect(full?.version).toBe(2);

    // the box reports it applied
    await box.publishAsync(
      t.configReported,
      JSON.stringify({ v: 1, version: 2, state: 'applied', appliedVersion: 2, at: new Date().toISOString() }),
      { qos: 1, retain: true },
    );
    await expect.poll(async () => (await tf.admin.call('boxes.show', { box: 'CFG-0001' })).box.reportedVersion).toBe(2);
    req.stop();
    box.end(true);
  });

  it('sends a command to a box and returns its answer, or a clear timeout', async () => {
    const creds = await provisionBox(tf, 'CMD-0001');
    const box = await boxClient(tf, creds);
    const t = deviceTopics(creds.deviceId);
    const responder = new RpcResponder(
      box,
      DEVICE_COMMANDS,
      {
        'forwarding.set': (p) => ({
          reason: p.reason ?? 'unconditional',
          enabled: p.enabled,
          number: p.number ?? null,
          confirmed: true,
        }),
      },
      { requestFilter: t.cmdReq },
    );
    await responder.start();
    const answer = await tf.admin.call('boxes.command', {
      box: 'CMD-0001',
      method: 'forwarding.set',
      params: { enabled: true, number: '+15550001111' },
    });
    expect(answer).toEqual({ reason: 'unconditional', enabled: true, number: '+15550001111', confirmed: true });
    // the alert engine's path: fleet.commands
    const direct = await tf.fleet.commands.send(creds.deviceId, 'forwarding.set', { enabled: false });
    expect(direct.enabled).toBe(false);
    await expect(
      tf.admin.call('boxes.command', { box: 'CMD-0001', method: 'reboot', params: {}, timeoutMs: 300 }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/unknown method|answers/) });
    await expect(
      tf.admin.call('boxes.command', { box: 'CMD-0001', method: 'self.destruct', params: {} }),
    ).rejects.toMatchObject({ code: ErrorCode.UnknownMethod });
    await responder.stop();
    box.end(true);
    await expect(
      tf.admin.call('boxes.command', { box: 'CMD-0001', method: 'reboot', params: {}, timeoutMs: 300 }),
    ).rejects.toMatchObject({ code: ErrorCode.RequestTimeout });
  });

  it('enforces roles and records who changed what', async () => {
    const viewer = await tf.admin.call('users.create', { name: 'vera', role: 'viewer' });
    const v = await OpsClient.connect(tf.url, 'vera', viewer.password);
    try {
      expect(Array.isArray(await v.call('boxes.list', {}))).toBe(true);
      await expect(
        v.call('clinics.create', { name: 'X', timezone: 'UTC', phoneNumbers: [], contacts: [] }),
      ).rejects.toMatchObject({ code: ErrorCode.NotAuthorized, message: expect.stringMatching(/operator/) });
    } finally {
      await v.close();
    }
    const clinic = await tf.admin.call('clinics.create', {
      name: 'Oak',
      timezone: 'America/Chicago',
      phoneNumbers: [],
      contacts: [],
    });
    await tf.admin.call('clinics.update', { clinicId: clinic.id, name: 'Oak Avenue' });
    const [entry] = await tf.admin.call('audit.list', { target: `clinic:${clinic.id}` });
    expect(entry).toMatchObject({
      actor: 'ops:admin',
      action: 'clinics.update',
      before: { name: 'Oak' },
      after: { name: 'Oak Avenue' },
    });
    await expect(tf.admin.call('clinics.update', { clinicId: clinic.id, timezone: 'Mars/Base' })).rejects.toMatchObject(
      { code: ErrorCode.ValidationFailed },
    );
  });

  it('rotates credentials: the old ones stop at once and the box claims new ones', async () => {
    const creds = await provisionBox(tf, 'ROT-0001');
    const box = mqtt.connect(tf.url, { username: creds.username, password: creds.password, reconnectPeriod: 0 });
    await once(box as unknown as NodeJS.EventEmitter, 'connect');
    const closed = once(box as unknown as NodeJS.EventEmitter, 'close');
    await tf.admin.call('boxes.rotateCredentials', { box: 'ROT-0001' });
    await closed;
    await expect(connectClient(tf.url, creds)).rejects.toThrow();
    const again = await claim(tf.url, 'ROT-0001', 'label-ROT-0001-secret');
    expect(again.state).toBe('approved');
    if (again.state === 'approved') {
      expect(again.password).not.toBe(creds.password);
      (await boxClient(tf, again)).end(true);
    }
  });

  it('connects a box with the longest serial (its 35-character device id is its client id)', async () => {
    const serial = `L${'X'.repeat(27)}-001`;
    const creds = await provisionBox(tf, serial);
    expect(creds.deviceId.length).toBe(35);
    (await boxClient(tf, creds)).end(true);
  });

  it('answers a repeated claim request id with the same answer', async () => {
    await tf.admin.call('boxes.register', { serial: 'IDEM-0001', claimSecret: 'label-IDEM' });
    const c = await connectClient(tf.url, { username: 'claim:IDEM-0001', password: 'label-IDEM' });
    await c.subscribeAsync(claimTopics('IDEM-0001').res, { qos: 1 });
    const answers: ClaimResponse[] = [];
    c.on('message', (_t, p) => answers.push(JSON.parse(p.toString()) as ClaimResponse));
    const body = JSON.stringify({ v: 1, id: newRequestId(), serial: 'IDEM-0001', model: 'cb1', softwareVersion: '1' });
    await c.publishAsync(claimTopics('IDEM-0001').req, body, { qos: 1 });
    await c.publishAsync(claimTopics('IDEM-0001').req, body, { qos: 1 });
    await expect.poll(() => answers.length).toBe(2);
    expect(answers[0]).toEqual(answers[1]);
    c.end(true);
  });
});
