#!/usr/bin/env node
// `npm run release -- <device|fleet> [--out DIR] [--no-tar]`: a release of one program, for the machine it runs on.
//
// It builds (scripts/build.mjs), then stages DIR/callbox-<program>-<version>-linux-<arch>/ with:
//   dist/<program>/            the built program (plain JavaScript, source maps); the fleet's dashboard in dist/fleet/ui
//   <program>/bin/…            the program's command, shared/load-program.mjs, scripts/install-deps.sh,
//                              scripts/verify-release.mjs (checks the files against MANIFEST.json), docs/INSTALL.md
//   systemd/                   the program's unit, sysusers.d and tmpfiles.d files (the box: its udev rules)
//   package.json               only the npm packages the program imports (dist/<program>/packages.json)
//   node_modules/              those packages and what they need, production only (this checkout's, pruned)
//   MANIFEST.json              program, version, node, platform, arch, and the sha256 of every other file
// and packs it as DIR/callbox-<program>-<version>-linux-<arch>.tar.gz beside it.
//
// The native bindings (sqlite3, serialport, node-hid, alsa-capture) are the ones built for this machine: make the
// release for a Pi (linux-arm64) on a Pi or an arm64 builder, the server's on linux-x64. The node_modules come
// from this checkout (`npm ci` first): only the packages the program needs, chosen from package-lock.json, so a
// release needs no network and carries exactly the versions the tests ran with.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const PROGRAMS = {
  device: {
    bin: { 'callbox-device': 'device/bin/callbox-device.js' },
    systemd: ['callbox-device.service', 'callbox.sysusers.conf', 'callbox.tmpfiles.conf', '60-callbox-modem.rules'],
  },
  fleet: {
    bin: { fleet: 'fleet/bin/fleet.js' },
    systemd: ['callbox-fleet.service', 'callbox.sysusers.conf', 'callbox.tmpfiles.conf'],
  },
};

function usage(message) {
  process.stderr.write(`release: ${message}\nusage: npm run release -- <device|fleet> [--out DIR] [--no-tar]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const program = args[0];
if (!program || !(program in PROGRAMS)) usage(`got program ${JSON.stringify(program ?? '')}, expected device or fleet`);
let out = join(repo, 'release');
let tar = true;
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--out' && args[i + 1]) out = args[++i];
  else if (args[i] === '--no-tar') tar = false;
  else usage(`unknown option ${JSON.stringify(args[i])}`);
}
if (!existsSync(join(repo, 'node_modules'))) usage('node_modules is missing: run `npm ci` first');

const t0 = Date.now();
const step = (what) =>
  process.stdout.write(`release ${program}: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
execFileSync(process.execPath, [join(repo, 'scripts', 'build.mjs')], { stdio: 'inherit' });

const rootPkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const spec = PROGRAMS[program];
const name = `callbox-${program}-${rootPkg.version}-linux-${process.arch}`;
const stage = join(out, name);
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

step(`staging ${relative(process.cwd(), stage) || stage}`);
cpSync(join(repo, 'dist', program), join(stage, 'dist', program), { recursive: true });
// The fleet serves the dashboard from dist/fleet/ui (fleet/web/ui built by scripts/build-web.mjs: static files, no
// npm package at run time).
if (program === 'fleet') {
  const { buildWeb, UI_DIST } = await import('./build-web.mjs');
  await buildWeb({ ifStale: true, quiet: true });
  cpSync(UI_DIST, join(stage, 'dist', 'fleet', 'ui'), { recursive: true, filter: (src) => !src.endsWith('.map') });
}
// The update guard runs before the box starts (ExecStartPre), unbundled: device/update/guard.mjs.
if (program === 'device')
  cpSync(join(repo, 'device', 'update', 'guard.mjs'), join(stage, 'dist', 'device', 'guard.mjs'));
for (const file of [
  ...Object.values(spec.bin),
  'shared/load-program.mjs',
  'scripts/verify-release.mjs',
  'scripts/install-deps.sh',
  'docs/INSTALL.md',
  ...spec.systemd.map((f) => `systemd/${f}`),
]) {
  mkdirSync(dirname(join(stage, file)), { recursive: true });
  cpSync(join(repo, file), join(stage, file));
}
const needed = JSON.parse(readFileSync(join(repo, 'dist', program, 'packages.json'), 'utf8'));
const pick = (deps = {}) => Object.fromEntries(Object.entries(deps).filter(([k]) => needed.includes(k)));
const pkg = {
  name: `callbox-${program}`,
  version: rootPkg.version,
  description: rootPkg.description,
  private: true,
  type: 'module',
  license: rootPkg.license,
  engines: rootPkg.engines,
  bin: spec.bin,
  dependencies: pick(rootPkg.dependencies),
  optionalDependencies: pick(rootPkg.optionalDependencies),
};
const missing = needed.filter((n) => !(n in pkg.dependencies) && !(n in pkg.optionalDependencies));
if (missing.length > 0)
  usage(`the build imports ${missing.join(', ')}, which package.json does not list as a dependency`);
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
step('copying the production packages the program needs');
// The packages the program imports and everything they depend on (dependencies, optional and peer dependencies),
// resolved the way Node resolves them (a nested node_modules first, then each folder up), read from the lockfile:
// offline, deterministic, and only what this program needs (the box does not get aedes, pg or fastify, and no
// development tool). npm prune did the same job but re-resolved the trimmed tree against the registry (minutes on a
// busy machine).
const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
const lockPackages = lock.packages ?? {};
function resolveIn(fromKey, dep) {
  // fromKey: 'node_modules/a/node_modules/b' or '' for the root.
  let base = fromKey;
  for (;;) {
    const key = base ? `${base}/node_modules/${dep}` : `node_modules/${dep}`;
    if (lockPackages[key]) return key;
    if (!base) return null;
    const at = base.lastIndexOf('/node_modules/');
    base = at < 0 ? '' : base.slice(0, at);
  }
}
const keep = new Set();
const queue = needed.map((n) => ['', n, false]);
while (queue.length > 0) {
  const [from, dep, optional] = queue.shift();
  const key = resolveIn(from, dep);
  if (!key) {
    if (optional) continue;
    usage(`${dep} (needed by ${from || 'the program'}) is not in package-lock.json: run \`npm ci\` first`);
  }
  if (keep.has(key)) continue;
  const meta = lockPackages[key];
  if (!existsSync(join(repo, key))) {
    if (optional || meta.optional) continue; // an optional package that did not install here (another platform)
    usage(`${key} is in package-lock.json but not installed: run \`npm ci\` first`);
  }
  keep.add(key);
  for (const d of Object.keys(meta.dependencies ?? {})) queue.push([key, d, false]);
  for (const d of Object.keys(meta.optionalDependencies ?? {})) queue.push([key, d, true]);
  for (const d of Object.keys(meta.peerDependencies ?? {}))
    queue.push([key, d, meta.peerDependenciesMeta?.[d]?.optional === true]);
}
for (const key of [...keep].sort()) {
  cpSync(join(repo, key), join(stage, key), {
    recursive: true,
    verbatimSymlinks: true,
    // A nested node_modules is copied as packages of its own (only the ones kept).
    filter: (src) => relative(join(repo, key), src).split(sep)[0] !== 'node_modules',
  });
}
// The release's lockfile lists exactly what it carries.
const releaseLock = {
  name: pkg.name,
  version: pkg.version,
  lockfileVersion: lock.lockfileVersion,
  requires: true,
  packages: {
    '': {
      name: pkg.name,
      version: pkg.version,
      license: pkg.license,
      dependencies: pkg.dependencies,
      optionalDependencies: pkg.optionalDependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
    ...Object.fromEntries([...keep].sort().map((k) => [k, lockPackages[k]])),
  },
};
writeFileSync(join(stage, 'package-lock.json'), `${JSON.stringify(releaseLock, null, 2)}\n`);
mkdirSync(join(stage, 'node_modules'), { recursive: true });
rmSync(join(stage, 'node_modules', '.cache'), { recursive: true, force: true });
// No links in a release (a box refuses them): the .bin shims are for npm scripts, not for the programs.
(function dropLinks(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isSymbolicLink() || entry.name === '.bin') rmSync(full, { recursive: true, force: true });
    else if (entry.isDirectory()) dropLinks(full);
  }
})(join(stage, 'node_modules'));
// node-gyp leaves its objects beside the binding (25 MiB for sqlite3): a package's build/ keeps only the *.node.
(function trimBuilds(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const full = join(dir, entry.name);
    if (entry.name === 'build' && existsSync(join(full, 'Release'))) keepOnlyBindings(full);
    else trimBuilds(full);
  }
})(join(stage, 'node_modules'));

function keepOnlyBindings(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      keepOnlyBindings(full);
      if (readdirSync(full).length === 0) rmSync(full, { recursive: true });
    } else if (!entry.name.endsWith('.node')) rmSync(full);
  }
}

step('writing MANIFEST.json');
const files = {};
let bytes = 0;
(function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.isFile()) {
      const data = readFileSync(full);
      bytes += data.length;
      files[relative(stage, full)] = createHash('sha256').update(data).digest('hex');
    }
  }
})(stage);
const manifest = {
  program,
  version: rootPkg.version,
  node: process.versions.node,
  platform: process.platform,
  arch: process.arch,
  builtAt: new Date().toISOString(),
  files,
};
writeFileSync(join(stage, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);

let artifact = stage;
if (tar) {
  artifact = `${stage}.tar.gz`;
  execFileSync('tar', ['-czf', artifact, '-C', out, name]);
}
const size = tar ? statSync(artifact).size : bytes;
step(
  `${Object.keys(files).length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB unpacked` +
    (tar ? `, ${(size / 2 ** 20).toFixed(1)} MiB packed` : '') +
    `; ${needed.length} npm packages`,
);
process.stdout.write(`${artifact}\n`);
