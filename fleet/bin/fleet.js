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
// A reader that goes away (`fleet ... | head`) is not an error of the command.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
}
const code = await runCli(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
});
// Exit once everything written has reached stdout and stderr: a pipe holds 64 KB, and process.exit() at once
// would cut a larger output (`fleet --json boxes list | jq`). The empty writes call back after the ones before.
process.exitCode = code;
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
