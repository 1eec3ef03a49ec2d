/**
 * vitest globalSetup: build the dashboard (fleet/web/ui -> fleet/web/ui/dist) when it is missing or older
 * than its sources, once per run, before any test file starts a fleet that serves it. A no-op (one walk of
 * the UI's files) when it is up to date.
 */
import { buildWeb } from '../../scripts/build-web.mjs';

export default async function setup(): Promise<void> {
  await buildWeb({ ifStale: true, quiet: true });
}
