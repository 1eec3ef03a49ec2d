/**
 * Item 10: the Acknowledge button works in a real browser. The page's
 * button is an HTML form; Chromium posts it as
 * application/x-www-form-urlencoded, which the fleet answered with 415
 * before the fix (the other tests posted with a bare fetch and missed it).
 * Pressed here in Debian's headless Chromium driven by playwright-core.
 */
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../shared/wait.js';
import { recordAttack } from './attacks.js';
import { type LinkServer, startLinkServer } from './link-server.js';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

describe('security 10: the acknowledge form in a browser', () => {
  let s: LinkServer;
  let browser: Browser;
  beforeAll(async () => {
    s = await startLinkServer();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('acknowledges the alert when the button is pressed, and the page says so', async () => {
    const { alert } = await s.engine.raise(s.fx.clinic.id, 'panic', { severity: 'critical', text: 'PANIC at Main St' });
    await waitFor(() => s.sent().length >= 1, 'the notification', 15_000);
    const n = s.sent()[0];
    if (!n) throw new Error('no notification');
    const page = await browser.newPage();
    try {
      const shown = await page.goto(n.ackUrl);
      expect(shown?.status()).toBe(200);
      expect((await s.fx.alerts.getAlert(alert.id))?.state).toBe('open');
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Acknowledge' }).click(),
      ]);
      expect(answer.request().headers()['content-type']).toBe('application/x-www-form-urlencoded');
      expect(answer.status()).toBe(200);
      await page.waitForLoadState();
      expect(await page.textContent('h1')).toContain('is acknowledged');
      expect(await s.fx.alerts.getAlert(alert.id)).toMatchObject({ state: 'acknowledged', ackedBy: 'link:webhook' });
      // Reloading the page now offers nothing to press.
      await page.goto(n.ackUrl);
      expect(await page.textContent('body')).toContain('already');
      expect(await page.locator('button').count()).toBe(0);
    } finally {
      await page.close();
    }
    // "attempts": browser form posts; "refused": none should be (the form must work): 1 of 1 accepted.
    recordAttack({
      item: 10,
      attack: 'press Acknowledge in headless Chromium (must be accepted)',
      attempts: 1,
      refused: 0,
    });
  });
});
