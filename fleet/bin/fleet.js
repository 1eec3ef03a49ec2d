#!/usr/bin/env node
// The `fleet` command (package.json "bin"). From a source checkout with its development tools it runs the
// TypeScript CLI through tsx; in a production install (`npm run build`, then `npm ci --omit=dev`) it runs the
// built dist/fleet/cli.js.
import { loadProgram } from '../../shared/load-program.mjs';

const { runCli } = await loadProgram({
  source: new URL('../cli.ts', import.meta.url),
  built: new URL('../../dist/fleet/cli.js', import.meta.url),
  name: 'fleet',
});
const code = await runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
});
process.exit(code);
