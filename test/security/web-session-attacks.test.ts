/**
 * Item 16 (issue 13, the fleet's HTTP API, fleet/web): attacks on sign-in sessions. Forged and stale
 * session cookies, a session id planted before sign-in (fixation), state changes without or with a wrong
 * CSRF token, a clinic user reaching for another clinic, and password guessing (rate-limited per address
 * and user name). Every attempt must be refused.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clinic } from '../../fleet/store/types.js';
import { type WebFeature, webFeature } from '../../fleet/web/server.js';
import { startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { signIn, type WebSession } from '../helpers/web.js';
import { recordAttack } from './attacks.js';

describe('security 16: web sessions', () => {
  let tf: TestFleet;
  let base: string;
  let admin: WebSession;
  let north: Clinic;
  let south: Clinic;
  let noraPassword = '';

  beforeAll(async () => {
    tf = await startTestFleet({ http: { loginPerMinute: 10 } }, { features: [webFeature()] });
    base = (tf.fleet.feature<WebFeature>('web') as WebFeature).url;
    const clinic = (name: string) =>
      tf.fleet.store.createClinic({
        organisationId: null,
        name,
        timezone: 'UTC',
        phoneNumbers: [],
        answeringService: null,
        contacts: [],
      });
    north = await clinic('North');
    south = await clinic('South');
    await tf.admin.call('boxes.register', { serial: 'SEC-S001', clinicId: south.id });
    noraPassword = (await tf.admin.call('users.create', { name: 'nora', role: 'clinic', clinic: north.id })).password;
    admin = await signIn(base, 'admin', tf.adminPassword);
  }, 60_000);

  afterAll(async () => {
    await tf?.close();
  });

  it('refuses forged, stale and planted session cookies', async () => {
    const tries: string[] = [
      ...Array.from({ length: 8 }, () => randomBytes(32).toString('base64url')),
      '',
      'x'.repeat(5000),
      "' OR 1=1 --",
    ];
    const ended = await signIn(base, 'admin', tf.adminPassword);
    expect((await ended.del('/api/session')).status).toBe(204);
    tries.push(ended.cookie.replace(/^callbox_session=/, ''));
    let refused = 0;
    for (const id of tries) {
      const r = await fetch(`${base}/api/v1/boxes.list`, { headers: { cookie: `callbox_session=${id}` } });
      if (r.status === 401) refused++;
    }
    // Fixation: an id planted in the browser before sign-in is never the session's; a live one is ended.
    const planted = randomBytes(32).toString('base64url');
    const victim = await signIn(base, 'admin', tf.adminPassword);
    for (const cookie of [`callbox_session=${planted}`, victim.cookie]) {
      const r = await fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie },
        body: JSON.stringify({ user: 'admin', password: tf.adminPassword }),
      });
      expect(r.status).toBe(200);
      const issued = (r.headers.get('set-cookie') ?? '').split(';')[0];
      if (issued !== cookie && (await fetch(`${base}/api/session`, { headers: { cookie } })).status === 401) refused++;
    }
    expect(refused).toBe(tries.length + 2);
    recordAttack({
      item: 16,
      attack: 'web: forged, stale or planted session cookies',
      attempts: tries.length + 2,
      refused,
    });
  });

  it('refuses state changes without the CSRF token, with a forged one, or with another session’s', async () => {
    const other = await signIn(base, 'admin', tf.adminPassword);
    const body = JSON.stringify({ name: 'Evil', timezone: 'UTC', phoneNumbers: [], contacts: [] });
    const tokens: (string | undefined)[] = [undefined, '', 'forged', other.csrf, `${admin.csrf}x`];
    let refused = 0;
    for (const token of tokens) {
      const r = await fetch(`${base}/api/v1/clinics.create`, {
        method: 'POST',
        headers: {
          cookie: admin.cookie,
          'content-type': 'application/json',
          ...(token === undefined ? {} : { 'x-csrf-token': token }),
        },
        body,
      });
      if (r.status === 403) refused++;
    }
    const signOut = await fetch(`${base}/api/session`, { method: 'DELETE', headers: { cookie: admin.cookie } });
    if (signOut.status === 403) refused++;
    expect(refused).toBe(tokens.length + 1);
    expect((await tf.fleet.store.listClinics()).some((c) => c.name === 'Evil')).toBe(false);
    recordAttack({
      item: 16,
      attack: 'web: change state without a valid CSRF token',
      attempts: tokens.length + 1,
      refused,
    });
  });

  it("refuses a clinic user every way into another clinic's data", async () => {
    const nora = await signIn(base, 'nora', noraPassword);
    const gets = [
      `/api/v1/boxes.list?clinicId=${south.id}`,
      `/api/v1/clinics.show?clinicId=${south.id}`,
      '/api/v1/boxes.show?box=SEC-S001',
      '/api/v1/boxes.getConfig?box=SEC-S001',
      '/api/v1/events.list?box=SEC-S001',
      '/api/v1/events.list',
      '/api/v1/audit.list',
      '/api/v1/claims.list',
      '/api/v1/orgs.list',
    ];
    let refused = 0;
    for (const path of gets) if ((await nora.get(path)).status === 403) refused++;
    const posts: [string, unknown][] = [
      ['/api/v1/boxes.assign', { box: 'SEC-S001', clinicId: north.id }],
      ['/api/v1/clinics.update', { clinicId: south.id, name: 'Mine' }],
      ['/api/v1/users.create', { name: 'eve', role: 'admin' }],
    ];
    for (const [path, body] of posts) if ((await nora.post(path, body)).status === 403) refused++;
    const listed = (await (await nora.get('/api/v1/boxes.list')).json()) as unknown[];
    expect(listed).toEqual([]);
    expect(refused).toBe(gets.length + posts.length);
    recordAttack({
      item: 16,
      attack: "web: clinic user reaching another clinic's data",
      attempts: gets.length + posts.length,
      refused,
    });
  });

  it('rate-limits password guessing per address and user name', async () => {
    const attempts = 15;
    let refused = 0;
    let limited = 0;
    for (let i = 0; i < attempts; i++) {
      const r = await fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'nora', password: `guess-${i}` }),
      });
      if (r.status === 401 || r.status === 429) refused++;
      if (r.status === 429) limited++;
    }
    expect(refused).toBe(attempts);
    expect(limited).toBeGreaterThanOrEqual(attempts - 10);
    recordAttack({ item: 16, attack: 'web: guess a password (sign-in rate limit)', attempts, refused });
  });
});
