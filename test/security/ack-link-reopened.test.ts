/**
 * Item 9: an acknowledgement link acts only on the opening of the alert it
 * was sent for, and acknowledges once. The attack: the ack link of a panic
 * that was acknowledged, not resolved in time and opened again is pressed
 * again (before the fix it acknowledged the reopened alert, stopping its
 * escalation), and the resolve link of the old opening is pressed too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../shared/wait.js';
import { recordAttack } from './attacks.js';
import { type LinkServer, startLinkServer } from './link-server.js';

describe('security 9: an old ack link after the alert opened again', () => {
  let s: LinkServer;
  beforeAll(async () => {
    s = await startLinkServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses the links of an earlier opening and changes nothing', async () => {
    const { alert } = await s.engine.raise(s.fx.clinic.id, 'panic', { severity: 'critical', text: 'PANIC at Main St' });
    await waitFor(() => s.sent().length >= 1, 'the first notification', 15_000);
    const first = s.sent()[0];
    if (!first) throw new Error('no notification');
    const ack = await fetch(first.ackUrl, { method: 'POST' });
    expect(ack.status).toBe(200);
    expect((await s.fx.alerts.getAlert(alert.id))?.state).toBe('acknowledged');

    // Not resolved within ackTimeoutMin: it opens again and notifies again, with new links.
    s.clock.t += 11 * 60_000;
    await s.engine.kick();
    await waitFor(async () => (await s.fx.alerts.getAlert(alert.id))?.epoch === 1, 'the alert to open again', 15_000);
    await waitFor(() => s.sent().length >= 2, 'the notification of the new opening', 15_000);

    let attempts = 0;
    let refused = 0;
    for (const [url, method] of [
      [first.ackUrl, 'POST'],
      [first.ackUrl, 'POST'],
      [first.resolveUrl, 'POST'],
      [first.ackUrl, 'GET'],
    ] as const) {
      attempts++;
      const r = await fetch(url, { method });
      if (r.status === 403) refused++;
      expect(r.status, `${method} ${url.slice(0, 60)}`).toBe(403);
    }
    const after = await s.fx.alerts.getAlert(alert.id);
    expect(after).toMatchObject({ state: 'open', epoch: 1 });

    // The new opening's link works, once: pressed again it changes nothing more.
    const fresh = s.sent()[1];
    if (!fresh) throw new Error('no second notification');
    expect((await fetch(fresh.ackUrl, { method: 'POST' })).status).toBe(200);
    const acked = await s.fx.alerts.getAlert(alert.id);
    expect(acked).toMatchObject({ state: 'acknowledged', ackedBy: 'link:webhook' });
    attempts++;
    const twice = await fetch(fresh.ackUrl, { method: 'POST' });
    expect(twice.status).toBe(200);
    const unchanged = await s.fx.alerts.getAlert(alert.id);
    expect(unchanged?.ackedAt).toBe(acked?.ackedAt);
    expect(unchanged?.ackDeadline).toBe(acked?.ackDeadline);
    refused++;
    recordAttack({ item: 9, attack: 'press ack/resolve links of an earlier opening, or twice', attempts, refused });
  });
});
