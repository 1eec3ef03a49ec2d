/**
 * Headless Chromium for the dashboard's browser tests: Debian's chromium driven by playwright-core, one
 * browser per test file (each user a fresh context: its own cookies), screenshots of the pages under
 * var/screenshots/ (git-ignored).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CALLBOX_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'var', 'screenshots');

/**
 * A headless Chromium. playwright gives every launch a new, empty user-data-dir (a temp folder it removes
 * on close), so no profile, cache or cookie of another run leaks in.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** A new context (fresh cookies) on the dashboard at `base`, signed in as `user`; its page on `path` (`shot`: a screenshot of the filled sign-in form). */
export async function signedIn(
  browser: Browser,
  base: string,
  user: string,
  password: string,
  path = '/',
  shot?: string,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(path);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(password);
  if (shot) await screenshot(page, shot);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return { context, page };
}

/** Save a full-page screenshot as var/screenshots/<name>.png; resolves with its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
