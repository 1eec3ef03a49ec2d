/**
 * Item 5: a serial registered without its label secret is not given to
 * whoever claims it first. The attack: ops register SEC5-0001 without a
 * secret (as the contract's old example did); an attacker logs in as
 * claim:SEC5-0001 with a secret of its own (trusted on first use) and
 * claims it. Before the fix the claim was approved at once with device
 * credentials, and the real box was refused afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../shared/ids.js';
import { connectClient, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { recordAttack } from './attacks.js';
import { claimWithId } from './helpers.js';

describe('security 5: claim on first use of a serial registered without its secret', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('keeps such a claim waiting for ops, and a serial registered with its secret refuses any other', async () => {
    await tf.admin.call('boxes.register', { serial: 'SEC5-0001' });
    let attempts = 0;
    let refused = 0;
    for (let i = 0; i < 3; i++) {
      attempts++;
      const a = await claimWithId(tf.url, 'SEC5-0001', 'attacker-secret-1', newRequestId());
      expect(a?.state).toBe('pending');
      if (a?.state !== 'approved') refused++;
    }
    const box = (await tf.admin.call('claims.list', {})).find((b) => b.serial === 'SEC5-0001');
    expect(box).toMatchObject({ claimState: 'pending', deviceId: null });
    await expect(connectClient(tf.url, { username: 'cb-sec5-0001', password: 'whatever-it-might-be' })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );

    // Registered with the label's secret: any other secret is refused at login, the right one approved.
    await tf.admin.call('boxes.register', { serial: 'SEC5-0002', claimSecret: 'label-SEC5-0002-secret' });
    attempts++;
    await expect(connectClient(tf.url, { username: 'claim:SEC5-0002', password: 'attacker-secret-2' })).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    refused++;
    const real = await claimWithId(tf.url, 'SEC5-0002', 'label-SEC5-0002-secret', newRequestId());
    expect(real?.state).toBe('approved');

    // Ops approve the first one explicitly: only then are credentials issued.
    await tf.admin.call('claims.approve', { serial: 'SEC5-0001' });
    const audit = await tf.admin.call('audit.list', { target: 'box:SEC5-0001' });
    expect(audit[0]).toMatchObject({ actor: 'ops:admin', action: 'claims.approve' });
    recordAttack({ item: 5, attack: 'claim a serial first (registered without / with its secret)', attempts, refused });
  });
});
