#!/usr/bin/env node
// `npm run build`: bundles each program's TypeScript into plain JavaScript under dist/, so that production
// runs `node dist/...` with no TypeScript loader (tsx is a development tool) and no cold transpile at start.
//
//   dist/device/main.js         the box program (systemd/callbox-device.service)
//   dist/device/chunks/         code the box loads only when configured (the virtual IO board, io.board: virtual)
//   dist/fleet/main.js          the fleet service (systemd/callbox-fleet.service)
//   dist/fleet/broker-child.js  the embedded broker's child process (forked by dist/fleet/main.js)
//   dist/fleet/cli.js           the `fleet` command (fleet/bin/fleet.js uses it where the sources are absent)
//
// npm packages stay external (they are installed by `npm ci --omit=dev`): native bindings (sqlite3, serialport,
// node-hid, alsa-capture) cannot be bundled, and keeping them all external keeps one rule. Each bundle's
// metafile records which packages it imports; dist/<program>/packages.json lists them, so an install for one
// program carries only what it needs (the box does not need aedes, pg or fastify).
import { mkdirSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(repo, 'dist');

const programs = {
  device: [{ in: 'device/main.ts', out: 'device/main' }],
  fleet: [
    { in: 'fleet/main.ts', out: 'fleet/main' },
    { in: 'fleet/broker/child.ts', out: 'fleet/broker-child' },
    { in: 'fleet/cli.ts', out: 'fleet/cli' },
  ],
};

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function packageOf(spec) {
  if (spec.startsWith('.') || spec.startsWith('/') || builtins.has(spec) || spec.startsWith('node:')) return null;
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

const started = Date.now();
for (const [program, entryPoints] of Object.entries(programs)) {
  const result = await build({
    absWorkingDir: repo,
    entryPoints: entryPoints.map((e) => ({ in: e.in, out: e.out })),
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    metafile: true,
    // The box's dynamic imports (hardware stand-ins, loaded only when configured) become chunks of their own
    // beside its main.js instead of code inlined in it; the fleet has none.
    ...(program === 'device' ? { splitting: true, chunkNames: 'device/chunks/[name]-[hash]' } : {}),
    logLevel: 'warning',
    // ESM output: code that needs `require` builds it with createRequire itself.
    banner: { js: '// Built by scripts/build.mjs from the TypeScript sources; do not edit.' },
  });
  const packages = new Set();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imp of output.imports) {
      if (!imp.external) continue;
      const name = packageOf(imp.path);
      if (name) packages.add(name);
    }
  }
  // Packages loaded with createRequire (optional hardware bindings) are invisible to the bundler: name them.
  const required = {
    device: ['alsa-capture', 'johnny-five', 'node-hid', 'serialport', 'unix-dgram'],
    fleet: ['unix-dgram'],
  }[program];
  for (const name of required) packages.add(name);
  mkdirSync(join(outdir, program), { recursive: true });
  writeFileSync(join(outdir, program, 'packages.json'), `${JSON.stringify([...packages].sort(), null, 2)}\n`);
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  process.stdout.write(
    `built ${program}: ${entryPoints.map((e) => `dist/${e.out}.js`).join(', ')} ` +
      `(${(bytes / 1024).toFixed(0)} KiB with source maps; ${packages.size} npm packages external)\n`,
  );
}
process.stdout.write(`build finished in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
