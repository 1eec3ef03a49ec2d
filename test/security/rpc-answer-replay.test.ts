/**
 * Item 3: an ops answer must go only to the user who asked. The attack: an
 * admin creates users (each answer holds the new user's password); a viewer
 * who saw or guessed those request ids sends its own requests with the same
 * ids. Before the fix, RpcResponder's cache, keyed by request id alone,
 * answered the viewer with the admin's answer: the new users' passwords.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpsClient } from '../../fleet/ops-client.js';
import { isCallboxError } from '../../shared/errors.js';
import { newRequestId } from '../../shared/ids.js';
import { startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { recordAttack } from './attacks.js';
import { opsUser } from './helpers.js';

describe('security 3: an ops answer replayed by request id', () => {
  let tf: TestFleet;
  beforeAll(async () => {
    tf = await startTestFleet();
  });
  afterAll(async () => {
    await tf?.close();
  });

  it("answers a viewer replaying an admin's request ids as the viewer, never with the admin's answer", async () => {
    const ids = Array.from({ length: 5 }, () => newRequestId());
    const passwords: string[] = [];
    for (const [i, id] of ids.entries()) {
      const u = await tf.admin.call('users.create', { name: `sec3new${i}`, role: 'admin' }, { id });
      passwords.push(u.password);
    }
    const viewer = await opsUser(tf, 'sec3viewer', 'viewer');
    const v = await OpsClient.connect(tf.url, 'sec3viewer', viewer.password);
    let refused = 0;
    const leaked: string[] = [];
    try {
      for (const [i, id] of ids.entries()) {
        try {
          const got = await v.call('users.create', { name: `sec3new${i}`, role: 'admin' }, { id });
          leaked.push(got.password);
        } catch (e) {
          expect(isCallboxError(e), String(e)).toBe(true);
          expect(String(e)).toMatch(/needs the admin role/);
          refused++;
        }
      }
      // The same with a method the viewer may call: it runs as the viewer's own request.
      const listId = newRequestId();
      const audit = await tf.admin.call('audit.list', { limit: 5 }, { id: listId });
      expect(audit.length).toBeGreaterThan(0);
      const boxes = await v.call('boxes.list', {}, { id: listId });
      expect(boxes).toEqual([]);
      refused++;
    } finally {
      await v.close();
    }
    expect(leaked).toEqual([]);
    // The admin repeating its own id still gets its first answer (idempotent for the one who asked).
    const again = await tf.admin.call('users.create', { name: 'sec3new0', role: 'admin' }, { id: ids[0] as string });
    expect(again.password).toBe(passwords[0]);
    recordAttack({
      item: 3,
      attack: "replay an admin's ops request ids as a viewer",
      attempts: ids.length + 1,
      refused,
    });
  });
});
