/**
 * `npm run bench:dashboard [-- --boxes 2000 --updates 500]`: the dashboard's fleet page with many boxes in
 * headless Chromium (Debian's, through playwright-core) against a real fleet (embedded broker, SQLite,
 * the web feature serving the built UI):
 *   - time to the first full render: from navigating to /fleet to every box's row in the table;
 *   - staying live: presence changes for `updates` boxes published on the fleet's bus (as the presence
 *     module does when boxes drop), through the live stream (SSE) to the rows; the time until all show,
 *     and the time back;
 * printed as figures with the machine they ran on. Boxes are provisioned in the store (no MQTT sessions:
 * the page and its stream are what is measured).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { chromium } = await import('playwright-core');
const { buildWeb } = await import('../scripts/build-web.mjs');
const { loadFleetConfig } = await import('../fleet/config.js');
const { Fleet } = await import('../fleet/fleet.js');
const { webFeature } = await import('../fleet/web/server.js');
type WebFeature = import('../fleet/web/server.js').WebFeature;

/** The page's document, as the functions run in the browser see it (this file is type-checked without the DOM). */
declare const document: { querySelectorAll(selector: string): { length: number } };

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : def;
}
const N = Math.max(1, arg('boxes', 2000));
const UPDATES = Math.min(N, Math.max(1, arg('updates', 500)));

await buildWeb({ ifStale: true, quiet: true });
const dir = mkdtempSync(join(tmpdir(), 'bench-dashboard-'));
let adminPassword = '';
const config = loadFleetConfig(
  undefined,
  {
    mqtt: { port: 0, host: '127.0.0.1' },
    store: { sqlitePath: join(dir, 'fleet.db') },
    http: { host: '127.0.0.1', port: 0 },
    voicemail: { dir: join(dir, 'voicemail') },
    updates: { dir: join(dir, 'releases') },
  },
  {},
);
const fleet = await Fleet.start(config, {
  features: [webFeature()],
  onBootstrapAdmin: (_u, p) => {
    adminPassword = p;
  },
});
const base = (fleet.feature<WebFeature>('web') as WebFeature).url;
const t0 = Date.now();
const clinic = await fleet.store.createClinic({
  organisationId: null,
  name: 'Bench Clinic',
  timezone: 'UTC',
  phoneNumbers: [],
  answeringService: null,
  contacts: [],
});
const deviceIds: string[] = [];
for (let i = 0; i < N; i += 100) {
  const batch = Array.from({ length: Math.min(100, N - i) }, (_, k) => `BENCH-${String(i + k).padStart(5, '0')}`);
  const made = await Promise.all(batch.map((serial) => fleet.registry.provision('bench', serial, clinic.id)));
  deviceIds.push(...made.map((m) => m.deviceId));
}
process.stderr.write(`provisioned ${N} boxes in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

const browser = await chromium.launch({
  executablePath: process.env.CALLBOX_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
try {
  const page = await (await browser.newContext({ baseURL: base, viewport: { width: 1400, height: 900 } })).newPage();
  await page.goto('/signin');
  await page.getByLabel('User').fill('admin');
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await page.getByRole('status', { name: 'Live updates' }).filter({ hasText: 'live' }).waitFor();

  // First full render: a fresh navigation to /fleet until every row is in the table.
  const r0 = Date.now();
  await page.goto('/fleet');
  await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length === n, N, {
    timeout: 120_000,
    polling: 'raf',
  });
  const firstRenderMs = Date.now() - r0;
  await page.getByRole('status', { name: 'Live updates' }).filter({ hasText: 'live' }).waitFor();

  const offlineRows = () => page.evaluate(() => document.querySelectorAll('tbody tr.offline').length);
  const before = await offlineRows();
  // Live: boxes come online (as presence says when they talk), then the same go offline.
  const wave = async (online: boolean): Promise<number> => {
    const at = new Date().toISOString();
    const s0 = Date.now();
    for (const deviceId of deviceIds.slice(0, UPDATES)) {
      fleet.bus.emit('presence.changed', { deviceId, online, at, reason: online ? 'traffic' : 'will' });
    }
    const want = online ? before - UPDATES : before;
    await page.waitForFunction((w) => document.querySelectorAll('tbody tr.offline').length === w, want, {
      timeout: 120_000,
      polling: 'raf',
    });
    return Date.now() - s0;
  };
  const onlineMs = await wave(true);
  const offlineMs = await wave(false);
  const one0 = Date.now();
  fleet.bus.emit('presence.changed', {
    deviceId: deviceIds[0] as string,
    online: true,
    at: new Date().toISOString(),
    reason: 'traffic',
  });
  await page.waitForFunction((w) => document.querySelectorAll('tbody tr.offline').length === w, before - 1, {
    timeout: 30_000,
    polling: 'raf',
  });
  const singleMs = Date.now() - one0;
  const heapMb = await page.evaluate(
    () => ((performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0) / 1e6,
  );

  const rows: [string, string][] = [
    ['boxes', String(N)],
    ['first full render of the fleet page', `${firstRenderMs} ms`],
    [
      `${UPDATES} boxes online, shown (SSE -> rows)`,
      `${onlineMs} ms (${((UPDATES / onlineMs) * 1000).toFixed(0)} updates/s)`,
    ],
    [`${UPDATES} boxes offline again, shown`, `${offlineMs} ms`],
    ['one presence change, shown', `${singleMs} ms`],
    ['page JS heap', `${heapMb.toFixed(1)} MB`],
    [
      'machine',
      `${cpus().length} x ${cpus()[0]?.model ?? '?'}, load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    ],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write('bench:dashboard (headless Chromium, fleet page)\n');
  for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(w)}  ${v}\n`);
} finally {
  await browser.close();
  await fleet.stop();
  rmSync(dir, { recursive: true, force: true });
}
