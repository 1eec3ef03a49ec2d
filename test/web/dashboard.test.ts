/**
 * The dashboard in headless Chromium against a real fleet (embedded broker, SQLite, the web, alerts and
 * voicemail features) with real boxes on MQTT: sign in, a box going offline and back live, an alert
 * acknowledged with its escalation timeline, a claim approved, a configuration error shown at its field,
 * and a clinic user kept to its clinic in the pages and the API. Screenshots go to var/screenshots/.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VoicemailUploader } from '../../device/voicemail/uploader.js';
import { VoicemailVault, wavOf } from '../../device/voicemail/vault.js';
import { alertsFeature } from '../../fleet/alerts/feature.js';
import { figuresFeature } from '../../fleet/figures/feature.js';
import { type PatientsFeature, patientsFeature } from '../../fleet/patients/feature.js';
import { voicemailFeature } from '../../fleet/voicemail/feature.js';
import type { WebFeature } from '../../fleet/web/server.js';
import { webFeature } from '../../fleet/web/server.js';
import { newEventId } from '../../shared/ids.js';
import { waitFor } from '../../shared/wait.js';
import { claim, provisionBox, startTestFleet, type TestFleet } from '../helpers/fleet.js';
import { launchBrowser, screenshot, signedIn } from './browser.js';
import { expectedFigures, SCRIPTED_DAY, sendScriptedDay, timezoneAtMidday } from './scripted-day.js';
import { TestBox } from './test-box.js';

interface Clinic {
  id: string;
  name: string;
}

describe('the dashboard in a real browser', () => {
  let tf: TestFleet;
  let browser: Browser;
  let base: string;
  let admin: Page;
  let north: Clinic;
  let south: Clinic;
  let figures: Clinic;
  const boxes: TestBox[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    tf = await startTestFleet(
      { alerts: { publicUrl: 'http://fleet.test', linkSecret: 'web-test-link-secret' } },
      { features: [webFeature(), alertsFeature(), voicemailFeature(), figuresFeature(), patientsFeature()] },
    );
    base = (tf.fleet.feature<WebFeature>('web') as WebFeature).url;
    const allDay = [{ open: '00:00', close: '24:00' }];
    north = await tf.admin.call('clinics.create', {
      name: 'North Clinic',
      timezone: 'Europe/London',
      phoneNumbers: [],
      contacts: [{ name: 'Dr North', phone: '+15550001001' }],
    });
    south = await tf.admin.call('clinics.create', {
      name: 'South Clinic',
      timezone: 'Europe/London',
      phoneNumbers: [],
      contacts: [{ name: 'Dr South', phone: '+15550002002' }],
    });
    const week = { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay };
    await tf.admin.call('alerts.settings.set', { clinicId: north.id, settings: { hours: week } });
    figures = await tf.admin.call('clinics.create', {
      name: 'Figures Clinic',
      timezone: timezoneAtMidday(),
      phoneNumbers: [],
      contacts: [],
    });
    for (const [serial, clinic] of [
      ['WEB-0001', north],
      ['WEB-0002', south],
      ['WEB-0003', figures],
    ] as const) {
      const creds = await provisionBox(tf, serial);
      await tf.admin.call('boxes.assign', { box: serial, clinicId: clinic.id });
      const box = new TestBox(tf.url, creds.deviceId, creds);
      await box.connect();
      await box.telemetry();
      boxes.push(box);
    }
    // The fleet sees them online before the pages load (the pages then follow the live stream).
    for (const serial of ['WEB-0001', 'WEB-0002', 'WEB-0003']) {
      await waitFor(
        async () => ((await tf.admin.call('boxes.show', { box: serial })) as { box: { online: boolean } }).box.online,
        `${serial} online`,
      );
    }
    browser = await launchBrowser();
    admin = (await signedIn(browser, base, 'admin', tf.adminPassword, '/', 'signin')).page;
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    for (const b of boxes) await b.close();
    for (const c of closers) await c();
    await tf?.close();
  });

  it('signs in and shows every box; a box going offline and back shows live, without a reload', async () => {
    const page = admin;
    await page.getByRole('link', { name: 'Fleet' }).click();
    const row = page.getByRole('row', { name: /WEB-0001/ });
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toMatch(/North Clinic\s+online/);
    await expect.poll(() => page.getByRole('row', { name: /WEB-0002/ }).textContent()).toMatch(/South Clinic/);
    await screenshot(page, 'fleet');
    // A marker on the window: gone if the page reloads.
    await page.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 42;
    });
    boxes[0]!.kill();
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toMatch(/offline/);
    // Offline first, and counted.
    await expect.poll(() => page.locator('tbody tr').first().getAttribute('data-serial')).toBe('WEB-0001');
    await expect.poll(() => page.getByRole('status', { name: 'Box counts' }).textContent()).toMatch(/1 offline/);
    await screenshot(page, 'fleet-offline');
    await boxes[0]!.connect();
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toMatch(/online/);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42);
    // Filters: the offline filter leaves none, the text filter one.
    await page.getByLabel('State').selectOption('offline');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(0);
    await page.getByLabel('State').selectOption('all');
    await page.getByLabel('Search').fill('south');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Search').fill('');
  });

  it('acknowledges an alert and shows its escalation timeline', async () => {
    await boxes[0]!.event('panic.pressed', { panicId: newEventId(), source: 'gpio:panic' });
    const page = admin;
    await page.getByRole('link', { name: 'Alerts' }).click();
    const show = page.getByRole('button', { name: /^Show alert/ });
    await show.first().waitFor({ timeout: 10_000 });
    await show.first().click();
    await expect.poll(() => page.getByTestId('alert-state').textContent()).toBe('open');
    await page.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => page.getByTestId('alert-state').textContent(), { timeout: 10_000 }).toBe('acknowledged');
    const timeline = page.getByRole('table', { name: 'Escalation timeline' });
    await expect.poll(() => timeline.textContent()).toMatch(/opened/);
    await expect.poll(() => timeline.textContent()).toMatch(/acknowledged.*ops:admin|ops:admin.*acknowledged/s);
    await expect.poll(() => timeline.textContent()).toMatch(/step 1: sms to Dr North/);
    await screenshot(page, 'alerts');
    const [alert] = (await tf.admin.call('alerts.list', { clinicId: north.id })) as {
      state: string;
      ackedBy: string;
    }[];
    expect(alert).toMatchObject({ state: 'acknowledged', ackedBy: expect.stringContaining('admin') });
  });

  it('approves a claim', async () => {
    const pending = await claim(tf.url, 'WEB-0009', 'label-WEB-0009-secret');
    expect(pending.state).toBe('pending');
    const page = admin;
    await page.getByRole('link', { name: 'Provisioning' }).click();
    await page.getByRole('button', { name: 'Approve WEB-0009' }).waitFor({ timeout: 10_000 });
    await page.getByLabel('Clinic for WEB-0009').selectOption({ label: 'South Clinic' });
    await screenshot(page, 'provisioning');
    await page.getByRole('button', { name: 'Approve WEB-0009' }).click();
    await page.getByText('Approved WEB-0009.').waitFor({ timeout: 10_000 });
    const { box } = (await tf.admin.call('boxes.show', { box: 'WEB-0009' })) as {
      box: { claimState: string; clinicId: string };
    };
    expect(box).toMatchObject({ claimState: 'approved', clinicId: south.id });
    expect(await page.getByRole('button', { name: 'Approve WEB-0009' }).count()).toBe(0);
  });

  it('shows a configuration error next to its field and saves nothing', async () => {
    const first = (await tf.admin.call('boxes.setConfig', { box: 'WEB-0001', settings: {} })) as { version: number };
    const page = admin;
    await page.goto('/boxes/WEB-0001');
    const field = page.getByLabel('calls.ringTimeoutS', { exact: true });
    await field.fill('1');
    await page.getByRole('button', { name: 'Save configuration' }).click();
    const error = page.locator('#cfg-err-calls_ringTimeoutS');
    await expect.poll(() => error.textContent(), { timeout: 10_000 }).toMatch(/expected .*5/);
    expect(await field.getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'box');
    const now = (await tf.admin.call('boxes.getConfig', { box: 'WEB-0001' })) as { version: number };
    expect(now.version).toBe(first.version);
    await field.fill('25');
    await page.getByRole('button', { name: 'Save configuration' }).click();
    await expect.poll(() => page.getByText(`Saved as version ${first.version + 1}.`).count()).toBe(1);
  });

  it('keeps a clinic user to its clinic, in the pages and in the API', async () => {
    const { password } = (await tf.admin.call('users.create', {
      name: 'mary',
      role: 'clinic',
      clinic: north.id,
    } as never)) as { password: string };
    const { context, page } = await signedIn(browser, base, 'mary', password);
    closers.push(() => context.close());
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('North Clinic');
    // Its own clinic's figures (figures methods by clinic: scope clinic).
    await expect.poll(() => page.locator('[data-kpi="offered"]').textContent(), { timeout: 10_000 }).toBe('0');
    await page.getByRole('link', { name: 'Fleet' }).click();
    await expect.poll(() => page.getByRole('row', { name: /WEB-0001/ }).count(), { timeout: 10_000 }).toBe(1);
    expect(await page.getByRole('row', { name: /WEB-0002/ }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Provisioning' }).count()).toBe(0);
    await page.goto(`/clinics/${south.id}`);
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/clinic|not/i);
    await screenshot(page, 'clinic-user-refused');
    for (const url of [
      `/api/v1/clinics.show?clinicId=${south.id}`,
      '/api/v1/boxes.show?box=WEB-0002',
      `/api/v1/alerts.list?clinicId=${south.id}`,
      `/api/v1/figures.heatmap?clinic=${encodeURIComponent('South Clinic')}`,
    ]) {
      const res = await context.request.get(url);
      expect(res.status(), url).toBe(403);
    }
    const own = await context.request.get('/api/v1/boxes.list');
    expect(((await own.json()) as { serial: string }[]).map((b) => b.serial)).toEqual(['WEB-0001']);
  });

  it('plays a voicemail in the browser, marks it heard and tells the box (its light goes out)', async () => {
    const box = boxes[0]!;
    const vault = new VoicemailVault(mkdtempSync(join(tmpdir(), 'web-vm-')));
    const pcm = Buffer.alloc(32_000);
    for (let i = 0; i < pcm.length; i += 2) pcm.writeInt16LE(Math.round(6000 * Math.sin(i / 9)), i);
    const voicemailId = '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b99';
    const meta = await vault.put(
      {
        voicemailId,
        callId: 'web-vm-1',
        number: '+15551230001',
        durationMs: 2000,
        recordedAt: new Date().toISOString(),
      },
      wavOf(pcm, 8000),
    );
    const uploader = new VoicemailUploader({ client: box.client!, topics: box.topics, vault, ackTimeoutMs: 5000 });
    await uploader.start();
    await uploader.kick();
    uploader.stop();
    await box.event('voicemail.recorded', {
      voicemailId,
      callId: 'web-vm-1',
      number: '+15551230001',
      durationMs: 2000,
      bytes: meta.bytes,
      sha256: meta.sha256,
    });
    const page = admin;
    await page.getByRole('link', { name: 'Voicemail' }).click();
    await page.getByLabel('Clinic', { exact: true }).selectOption({ label: 'North Clinic' });
    const item = page.getByRole('listitem').filter({ hasText: 'WEB-0001' });
    await expect.poll(() => item.count(), { timeout: 10_000 }).toBe(1);
    expect(await item.textContent()).toMatch(/unheard/);
    const audio = item.locator('audio');
    // The browser fetches and decodes the stored WAV from the fleet, and plays it.
    const duration = await audio.evaluate(async (a: { muted: boolean; duration: number; play(): Promise<void> }) => {
      a.muted = true;
      await a.play();
      return a.duration;
    });
    expect(duration).toBeGreaterThan(1.5);
    await expect.poll(() => item.textContent(), { timeout: 10_000 }).toMatch(/heard .* by ops:admin/);
    await screenshot(page, 'voicemail');
    const audit = (await tf.admin.call('audit.list', { target: `voicemail:${voicemailId}` })) as { action: string }[];
    expect(audit.map((a) => a.action)).toContain('voicemail.heard');
    // And the box that recorded it was told (its voicemail light goes out when none is left unheard).
    await waitFor(
      () => box.commands.includes(`voicemail.heard ${voicemailId}`),
      'the box told the voicemail was heard',
    );
  });

  it('shows on the clinic page the figures a scripted day of calls must give', async () => {
    const want = expectedFigures(SCRIPTED_DAY, { serviceLevelTargetS: 30, shortAbandonS: 10, repeatWindowH: 24 });
    await sendScriptedDay(boxes[2]!, SCRIPTED_DAY);
    await waitFor(async () => {
      const today = new Intl.DateTimeFormat('en-CA', { timeZone: timezoneAtMidday() }).format(new Date());
      const r = (await tf.admin.call('figures.clinic', { clinic: figures.id, from: today, to: today })) as {
        totals: { offered: number };
      };
      return r.totals.offered === want.offered;
    }, 'the figures of the scripted day');
    const page = admin;
    await page.goto(`/clinics/${figures.id}`);
    const kpi = (k: string) => page.locator(`[data-kpi="${k}"]`).textContent();
    await expect.poll(() => kpi('offered'), { timeout: 10_000 }).toBe(String(want.offered));
    expect(await kpi('answered')).toBe(String(want.answered));
    expect(await kpi('abandoned')).toBe(String(want.abandoned));
    expect(await kpi('shortAbandoned')).toBe(String(want.shortAbandoned));
    expect(await kpi('missed')).toBe(String(want.missed));
    expect(await kpi('voicemail')).toBe(String(want.voicemail));
    expect(await kpi('rolledOver')).toBe(String(want.rolledOver));
    expect(await kpi('repeatCalls')).toBe(String(want.repeatCalls));
    expect(await kpi('asa')).toBe(want.asa);
    expect(await kpi('serviceLevel')).toBe(want.serviceLevel);
    expect(await kpi('abandonRate')).toBe(want.abandonRate);
    await page.getByRole('table', { name: /Calls offered per weekday and hour/ }).waitFor();
    // The call-back list (fleet/patients): the day's unanswered callers, each markable as called back.
    // The list fills as fleet/patients goes through the day's events (the page reads it again at each change):
    // once the call log has every stored event, the page must show every open call-back.
    await tf.fleet.feature<PatientsFeature>('patients')?.settled();
    const open = ((await tf.admin.call('callbacks.list', { clinicId: figures.id, state: 'open' })) as unknown[]).length;
    expect(open).toBeGreaterThan(0);
    const callbacks = page.getByRole('table', { name: 'Call-back list' });
    await expect
      .poll(() => callbacks.getByRole('button', { name: 'Mark called back' }).count(), { timeout: 15_000 })
      .toBe(open);
    await callbacks.getByRole('button', { name: 'Mark called back' }).first().click();
    await expect.poll(() => callbacks.getByRole('button', { name: 'Mark called back' }).count()).toBe(open - 1);
    expect(await callbacks.textContent()).toMatch(/by ops:admin/);
    await screenshot(page, 'clinic');
  });
});
