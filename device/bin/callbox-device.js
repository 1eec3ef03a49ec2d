#!/usr/bin/env node
// The `callbox-device` command (package.json "bin"). From a source checkout with its development tools it runs
// the TypeScript program through tsx; in a production install (`npm run build`, then `npm ci --omit=dev`) it runs
// the built dist/device/main.js.
import { loadProgram } from '../../shared/load-program.mjs';

const { main } = await loadProgram({
  source: new URL('../main.ts', import.meta.url),
  built: new URL('../../dist/device/main.js', import.meta.url),
  name: 'callbox-device',
});
await main(process.argv);
