#!/usr/bin/env node
// `npm run build:web [-- --if-stale]`: builds the dashboard (fleet/web/ui: Vite, Lit, uPlot) into fleet/web/ui/dist,
// which the fleet serves at `/` (git-ignored: built, never committed). With --if-stale it builds only when the dist
// is missing or older than a source file of the UI (the tests' globalSetup, `npm start` and the demo call it so).
// The build goes to a temporary folder renamed into place, so a fleet serving the old dist never sees half a build.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
export const UI_ROOT = join(repo, 'fleet', 'web', 'ui');
export const UI_DIST = join(UI_ROOT, 'dist');

/** The newest modification time (ms) of the UI's sources: index.html, src/, and the shared types it imports. */
function newestSource(dir = UI_ROOT) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name.startsWith('dist.') || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Is the built UI missing or older than its sources? */
export function uiIsStale() {
  const built = join(UI_DIST, 'index.html');
  return !existsSync(built) || statSync(built).mtimeMs < newestSource();
}

/** Build the UI (when stale, with ifStale); resolves with whether it built. */
export async function buildWeb({ ifStale = false, quiet = false } = {}) {
  if (ifStale && !uiIsStale()) return false;
  const { build } = await import('vite');
  const tmp = `${UI_DIST}.${process.pid}`;
  const t0 = Date.now();
  await build({
    root: UI_ROOT,
    configFile: false,
    logLevel: quiet ? 'error' : 'warn',
    base: '/',
    build: { outDir: tmp, emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1000 },
  });
  rmSync(UI_DIST, { recursive: true, force: true });
  renameSync(tmp, UI_DIST);
  if (!quiet) process.stdout.write(`built the dashboard into fleet/web/ui/dist in ${Date.now() - t0} ms\n`);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ifStale = process.argv.includes('--if-stale');
  buildWeb({ ifStale }).then(
    (built) => {
      if (!built) process.stdout.write('the dashboard in fleet/web/ui/dist is up to date\n');
    },
    (e) => {
      process.stderr.write(`build:web failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
