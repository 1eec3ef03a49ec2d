/**
 * Item 7: a flood of made-up serials. The attack: many unauthenticated
 * claim logins, each with a new serial and any secret. Before the fix each
 * one wrote a pending box and a credential (813 were created) and its
 * scrypt hashing delayed a real box's login to 4.6 s. Now new serials are
 * rate-limited per source address and capped in number, with those checks
 * before any hashing; and claims left waiting expire.
 */
import { createConnection } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../shared/ids.js';
import { connectClient, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { recordAttack } from './attacks.js';
import { claimWithId } from './helpers.js';

const PER_SOURCE = 5;
const PENDING_MAX = 8;
const FAILURES = 5;

/** A claim login from a chosen loopback source address; resolves with whether the broker let it in. */
function claimLogin(port: number, from: string, serial: string): Promise<boolean> {
  return loginFrom(port, from, `claim:${serial}`, `made-up-secret-${serial}`);
}

/** A login from a chosen loopback source address; resolves with whether the broker let it in. */
function loginFrom(port: number, from: string, username: string, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c: MqttClient = new mqtt.MqttClient(() => createConnection({ port, host: '127.0.0.1', localAddress: from }), {
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      protocolVersion: 4,
    });
    c.once('connect', () => {
      c.end(true);
      resolve(true);
    });
    c.once('error', () => {
      c.end(true);
      resolve(false);
    });
  });
}

describe('security 7: a flood of unknown claim logins', () => {
  let tf: TestFleet;
  let port: number;
  beforeAll(async () => {
    tf = await startTestFleet({
      mqtt: {
        claimNewPerSourcePerMinute: PER_SOURCE,
        claimPendingMax: PENDING_MAX,
        claimPendingExpiryH: 1,
        authFailuresPerSourcePerMinute: FAILURES,
      },
    });
    port = Number(new URL(tf.url).port);
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('lets few new serials in per source, caps those waiting, keeps real logins fast, and expires them', async () => {
    const box = await provisionBox(tf, 'SEC7-REAL');
    const flood = Array.from({ length: 60 }, (_, i) =>
      claimLogin(port, '127.0.0.1', `SEC7-F${String(i).padStart(3, '0')}`),
    );
    // A real box logs in during the flood.
    const t0 = Date.now();
    const real = await connectClient(tf.url, { username: box.username, password: box.password });
    const loginMs = Date.now() - t0;
    real.end(true);
    const admitted = (await Promise.all(flood)).filter(Boolean).length;
    // The bucket holds PER_SOURCE and refills PER_SOURCE a minute: a slow machine may see one more.
    const refill = Math.ceil(((Date.now() - t0) / 60_000) * PER_SOURCE);
    expect(admitted).toBeGreaterThanOrEqual(PER_SOURCE);
    expect(admitted).toBeLessThanOrEqual(PER_SOURCE + refill);
    // Another source gets its own few, up to the cap of claims waiting for ops.
    const second = await Promise.all(
      Array.from({ length: 10 }, (_, i) => claimLogin(port, '127.0.0.2', `SEC7-G${String(i).padStart(3, '0')}`)),
    );
    expect(second.filter(Boolean).length).toBe(PENDING_MAX - admitted);
    const third = await claimLogin(port, '127.0.0.3', 'SEC7-H000');
    expect(third).toBe(false);
    // Each admitted login is recorded by the fleet (through the broker's report): exactly the cap, no more.
    await expect
      .poll(async () => (await tf.fleet.store.listBoxes({ claimState: 'pending' })).length, { timeout: 10_000 })
      .toBe(PENDING_MAX);
    const creds = (await tf.fleet.store.listActiveCredentials()).filter(
      (c) => c.kind === 'claim' && c.subject.startsWith('SEC7-'),
    );
    expect(creds.length).toBe(PENDING_MAX + 1);
    // A serial registered with its secret is not subject to any of it.
    await tf.admin.call('boxes.register', { serial: 'SEC7-REG1', claimSecret: 'label-SEC7-REG1-secret' });
    expect((await claimWithId(tf.url, 'SEC7-REG1', 'label-SEC7-REG1-secret', newRequestId()))?.state).toBe('approved');

    // An hour later (claimPendingExpiryH) the waiting ones are forgotten; a new serial may come in again.
    await tf.admin.call('claims.reject', { serial: 'SEC7-F000', reason: 'not ours' }).catch(() => undefined);
    const expired = await tf.fleet.expireClaims(Date.now() + 3_600_001);
    expect(expired).toBeGreaterThanOrEqual(PENDING_MAX - 1);
    expect(await tf.fleet.store.listBoxes({ claimState: 'pending' })).toEqual([]);
    expect(await claimLogin(port, '127.0.0.3', 'SEC7-H001')).toBe(true);

    // Guessing a known box's password: past FAILURES a minute, the source is refused before any scrypt work,
    // even with the right password; another source, and logins already verified, are not.
    const ops = await tf.admin.call('users.create', { name: 'sec7ops', role: 'viewer' });
    let guesses = 0;
    for (let i = 0; i < FAILURES + 5; i++) {
      guesses++;
      expect(await loginFrom(port, '127.0.0.4', box.username, `guess-${i}-password`)).toBe(false);
    }
    expect(await loginFrom(port, '127.0.0.4', ops.username, ops.password)).toBe(false);
    expect(await loginFrom(port, '127.0.0.5', ops.username, ops.password)).toBe(true);
    expect(await loginFrom(port, '127.0.0.4', box.username, box.password)).toBe(true);

    const attempts = 60 + 10 + 1 + guesses + 1;
    const refused = attempts - admitted - second.filter(Boolean).length;
    recordAttack({
      item: 7,
      attack: `made-up serials and password guesses (real box login took ${loginMs} ms)`,
      attempts,
      refused,
    });
  });
});
