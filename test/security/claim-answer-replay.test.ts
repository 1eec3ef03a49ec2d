/**
 * Item 1: a claim answer (a box's device password) must never reach anyone
 * but that box's claim login. The attack: a viewer reads a box's
 * lastClaimRequestId, then unknown serials (trusted on first use with any
 * secret) and another registered box replay that id on their own claim
 * topics. Before the fix, the fleet's claim-answer cache, keyed by request
 * id alone, published the box's password to each of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../shared/ids.js';
import { connectClient, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { recordAttack } from './attacks.js';
import { claimWithId, opsUser } from './helpers.js';

describe('security 1: a claim answer replayed by request id', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it('gives the box password only to the box that proved its claim secret', async () => {
    const secret = 'label-SEC1-0001-secret';
    await tf.admin.call('boxes.register', { serial: 'SEC1-0001', claimSecret: secret });
    const id = newRequestId();
    const own = await claimWithId(tf.url, 'SEC1-0001', secret, id);
    expect(own?.state).toBe('approved');
    const ownPassword = own?.state === 'approved' ? own.password : '';

    // A viewer sees the request id.
    const viewer = await opsUser(tf, 'sec1viewer', 'viewer');
    const { OpsClient } = await import('../../fleet/ops-client.js');
    const v = await OpsClient.connect(tf.url, 'sec1viewer', viewer.password);
    const shown = await v.call('boxes.show', { box: 'SEC1-0001' });
    await v.close();
    expect(shown.box.lastClaimRequestId).toBe(id);

    // Another registered box with its own right secret replays it too.
    await tf.admin.call('boxes.register', { serial: 'SEC1-0002', claimSecret: 'label-SEC1-0002-secret' });
    const attempts: { serial: string; secret: string }[] = [
      ...Array.from({ length: 5 }, (_, i) => ({ serial: `SEC1-EVIL${i}`, secret: `anything-${i}-at-all` })),
      { serial: 'SEC1-0002', secret: 'label-SEC1-0002-secret' },
    ];
    let refused = 0;
    const leaked: string[] = [];
    for (const a of attempts) {
      const answer = await claimWithId(tf.url, a.serial, a.secret, id);
      expect(answer, `an answer for ${a.serial}`).toBeDefined();
      if (answer?.state === 'approved') {
        if (answer.deviceId === 'cb-sec1-0001' || answer.password === ownPassword) leaked.push(a.serial);
        else refused++; // its own credentials (a registered box), not the victim's
      } else refused++;
    }
    expect(leaked).toEqual([]);

    // Whatever came back, nobody logs in as the victim box with a password they were sent.
    await expect(
      connectClient(tf.url, { username: 'cb-sec1-0001', password: 'not-the-password-at-all' }),
    ).rejects.toThrow(/Bad username or password|Not authorized/i);
    // The box itself repeating its request (a QoS 1 redelivery) still gets its answer.
    const again = await claimWithId(tf.url, 'SEC1-0001', secret, id);
    expect(again?.state === 'approved' && again.password).toBe(ownPassword);
    recordAttack({
      item: 1,
      attack: 'replay a box claim request id from other claim logins',
      attempts: attempts.length,
      refused,
    });
  });
});
