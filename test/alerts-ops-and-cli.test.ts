/**
 * The alerts feature in the running fleet: ops methods over MQTT through the
 * `fleet` CLI (list, ack by code, resolve, rollover on and off confirmed by
 * the box, role checks, not-found exit code) and the acknowledgement links
 * served over a real HTTP port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlertsFeature, alertsFeature } from '../fleet/alerts/feature.js';
import { runCli } from '../fleet/cli.js';
import type { Clinic } from '../fleet/store/types.js';
import { webFeature } from '../fleet/web/server.js';
import { DEVICE_COMMANDS } from '../shared/contract/rpc.js';
import { deviceTopics } from '../shared/contract/topics.js';
import { newBootId, newEventId } from '../shared/ids.js';
import { RpcResponder } from '../shared/rpc.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from './helpers/fleet.js';

describe('alerts through the ops API, the CLI and links', () => {
  let tf: TestFleet;
  let feature: AlertsFeature;
  let clinic: Clinic;
  let deviceId: string;
  let viewerPassword: string;
  const forwarding: boolean[] = [];
  const closers: (() => Promise<unknown> | unknown)[] = [];

  const cli = async (args: string[], user = 'admin', password = tf.adminPassword) => {
    let out = '';
    let err = '';
    const code = await runCli(['--url', tf.url, '--user', user, ...args], {
      out: (s) => {
        out += s;
      },
      err: (s) => {
        err += s;
      },
      env: { CALLBOX_OPS_PASSWORD: password },
    });
    return { code, out, err };
  };

  beforeAll(async () => {
    tf = await startTestFleet(
      { alerts: { publicUrl: 'http://fleet.test', linkSecret: 'ops-test-link-secret' } },
      { features: [webFeature(), alertsFeature()] },
    );
    feature = tf.fleet.feature<AlertsFeature>('alerts') as AlertsFeature;
    clinic = await tf.fleet.store.createClinic({
      organisationId: null,
      name: 'Main St',
      timezone: 'Europe/Berlin',
      phoneNumbers: [],
      answeringService: '+15550009999',
      contacts: [{ name: 'alice', email: 'alice@clinic.test' }],
    });
    const box = await provisionBox(tf, 'OPS-0001');
    deviceId = box.deviceId;
    await tf.admin.call('boxes.assign', { box: 'OPS-0001', clinicId: clinic.id });
    const c = await connectClient(tf.url, box);
    closers.push(() => c.end(true));
    const responder = new RpcResponder(
      c,
      DEVICE_COMMANDS,
      {
        'forwarding.set': (p) => {
          forwarding.push(p.enabled);
          return { reason: 'unconditional' as const, enabled: p.enabled, number: p.number ?? null, confirmed: true };
        },
        'panic.ack': () => ({ acknowledged: true }),
      },
      { requestFilter: deviceTopics(deviceId).cmdReq },
    );
    await responder.start();
    await c.publishAsync(
      deviceTopics(deviceId).events,
      JSON.stringify({
        v: 1,
        id: newEventId(),
        deviceId,
        bootId: newBootId(),
        seq: 1,
        at: new Date().toISOString(),
        type: 'panic.pressed',
        body: { panicId: newEventId(), source: 'gpio:panic' },
      }),
      { qos: 1 },
    );
    viewerPassword = (await tf.admin.call('users.create', { name: 'victor', role: 'viewer' })).password;
  }, 30_000);

  afterAll(async () => {
    for (const c of closers) await c();
    await tf?.close();
  });

  it('lists the panic alert and acknowledges it by its code; a viewer may look but not acknowledge', async () => {
    await expect
      .poll(async () => (await cli(['alerts', 'list'])).out, { timeout: 5000 })
      .toMatch(/open\s+critical\s+panic/);
    const [alert] = (await feature.alerts?.store.listAlerts({ state: 'active' })) ?? [];
    expect(alert).toBeDefined();
    const code = alert?.shortCode ?? '';
    const viewer = await cli(['alerts', 'ack', code], 'victor', viewerPassword);
    expect(viewer.code).toBe(4);
    expect(viewer.err).toMatch(/needs the operator role/);
    expect((await cli(['alerts', 'list'], 'victor', viewerPassword)).code).toBe(0);
    const ack = await cli(['alerts', 'ack', code]);
    expect(ack).toMatchObject({ code: 0 });
    expect(ack.out).toContain(`alert ${code} is acknowledged (by ops:admin)`);
    const show = await cli(['--json', 'alerts', 'show', code]);
    const shown = JSON.parse(show.out) as { alert: { state: string }; log: { action: string }[] };
    expect(shown.alert.state).toBe('acknowledged');
    expect(shown.log.map((l) => l.action)).toEqual(['opened', 'step', 'acknowledged']);
    expect((await cli(['alerts', 'show', '0000'])).code).toBe(3);
  });

  it('resolves an alert by the link in its message, over HTTP (GET shows, POST acts)', async () => {
    const [alert] = (await feature.alerts?.store.listAlerts({ state: 'active' })) ?? [];
    const url = feature.alerts?.links.url(alert?.id ?? '', 'resolve', 'alice') ?? '';
    const local = url.replace('http://fleet.test', feature.httpUrl);
    const page = await fetch(local);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post">');
    expect((await feature.alerts?.store.getAlert(alert?.id ?? ''))?.state).toBe('acknowledged');
    const done = await fetch(local, { method: 'POST' });
    expect(done.status).toBe(200);
    expect(await feature.alerts?.store.getAlert(alert?.id ?? '')).toMatchObject({
      state: 'resolved',
      resolvedBy: 'link:alice',
    });
    expect((await fetch(`${feature.httpUrl}/alerts/link?t=forged.token`)).status).toBe(403);
  });

  it('rolls the clinic over and back from the CLI, confirmed by the box', async () => {
    const on = await cli(['rollover', 'start', clinic.id, '--reason', 'the front desk is at a fire drill']);
    expect(on).toMatchObject({ code: 0 });
    expect(on.out).toContain(`rollover on\n  ${deviceId}: confirmed`);
    expect(forwarding).toEqual([true]);
    const list = await cli(['alerts', 'list', '--clinic', clinic.id]);
    expect(list.out).toMatch(
      /calls for Main St are rolling over to the answering service \(…9999\) since .* because the front desk is at a fire drill/,
    );
    const off = await cli(['rollover', 'stop', clinic.id]);
    expect(off.out).toContain('rollover off: calls are back at the clinic');
    expect(forwarding).toEqual([true, false]);
    const bad = await cli(['rollover', 'start', clinic.id, '--reason', 'x', '--number', '12345']);
    expect(bad.code).toBe(6);
    expect(bad.err).toMatch(/number/);
  });
});
