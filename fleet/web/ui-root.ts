/**
 * Where the built dashboard is (static files the fleet serves at `/`): beside the bundled fleet in a
 * release (dist/fleet/ui, copied there by scripts/release.mjs), else fleet/web/ui/dist in a checkout
 * (built by `npm run build:web`). Null when neither exists: the fleet then answers `/` with how to build it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function uiRoot(here = dirname(fileURLToPath(import.meta.url))): string | null {
  // fleet/web/ui itself holds the sources (index.html and src/): never serve those.
  for (const dir of [join(here, 'ui', 'dist'), join(here, 'web', 'ui', 'dist'), join(here, 'ui')]) {
    if (existsSync(join(dir, 'index.html')) && !existsSync(join(dir, 'src'))) return dir;
  }
  return null;
}

/** What `/` answers when the dashboard was not built. */
export const UI_MISSING =
  'The dashboard is not built: run `npm run build:web` (it builds fleet/web/ui into fleet/web/ui/dist).';
