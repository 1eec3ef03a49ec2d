#!/usr/bin/env node
// The update guard, run by systemd before every start of the box (ExecStartPre in systemd/callbox-device.service):
//
//   node /opt/callbox/guard.mjs --root /opt/callbox --data /var/lib/callbox [--max-starts 3]
//
// Plain JavaScript with no imports beyond node: so that it runs without the build, and it is copied out of a
// release (to /opt/callbox/guard.mjs) only once that release has confirmed its health, so a bad release cannot
// break the one thing that switches back from it. It reads <data>/update-state.json (device/update/slots.ts):
// with an update pending for the release `current` points at, it counts this start; when the release did not
// confirm its health before its deadline, or started more than --max-starts times without confirming, it points
// `current` back at the release it came from (an atomic rename of a new symlink) and records why, for the box
// to report `rolled_back` to the fleet. It never fails the start: any problem of its own is printed and it exits 0.
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readState(dataDir) {
  try {
    return { v: 1, pending: null, last: null, ...JSON.parse(readFileSync(join(dataDir, 'update-state.json'), 'utf8')) };
  } catch {
    return { v: 1, pending: null, last: null };
  }
}

function fsyncDir(dir) {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeState(dataDir, state) {
  const file = join(dataDir, 'update-state.json');
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(dataDir);
}

export function currentVersion(root) {
  try {
    return readlinkSync(join(root, 'current')).split('/').filter(Boolean).pop() ?? null;
  } catch {
    return null;
  }
}

export function pointCurrent(root, version) {
  const link = join(root, 'current');
  const next = `${link}.next`;
  rmSync(next, { force: true });
  symlinkSync(join('releases', version), next);
  renameSync(next, link);
  fsyncDir(root);
}

/**
 * One guard run. Returns 'none' (no update pending), 'counted' (a start of the new release counted) or
 * 'rolled_back' (current points at the release before again; the reason is in the state's `last`).
 */
export function runGuard({ root, dataDir, maxStarts = 3, now = new Date() }) {
  const s = readState(dataDir);
  const p = s.pending;
  if (!p) return 'none';
  if (currentVersion(root) !== p.version) {
    // Stopped between recording the update and switching: the switch never happened.
    s.pending = null;
    writeState(dataDir, s);
    return 'none';
  }
  const late = now.getTime() > Date.parse(p.deadline);
  if (late || p.starts >= maxStarts) {
    const why = late
      ? `release ${p.version} did not confirm its health before ${p.deadline}`
      : `release ${p.version} failed to start ${p.starts} time(s) without confirming its health`;
    const reason = p.health ? `${why}: ${p.health}` : why;
    if (p.from) pointCurrent(root, p.from);
    s.pending = null;
    s.last = {
      version: p.version,
      outcome: 'rolled_back',
      reason,
      at: now.toISOString(),
      ...(p.rolloutId ? { rolloutId: p.rolloutId } : {}),
      reported: false,
    };
    writeState(dataDir, s);
    return 'rolled_back';
  }
  p.starts++;
  writeState(dataDir, s);
  return 'counted';
}

function main(argv) {
  const arg = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  const root = arg('--root', '/opt/callbox');
  const dataDir = arg('--data', '/var/lib/callbox');
  const maxStarts = Number(arg('--max-starts', '3'));
  try {
    const did = runGuard({ root, dataDir, maxStarts: Number.isInteger(maxStarts) && maxStarts > 0 ? maxStarts : 3 });
    if (did === 'rolled_back') {
      process.stdout.write(`callbox-guard: rolled back: ${readState(dataDir).last?.reason}\n`);
    } else if (did === 'counted') {
      process.stdout.write(`callbox-guard: start of an unconfirmed release counted\n`);
    }
  } catch (e) {
    // The box must still start: a guard that cannot read or write its state changes nothing.
    process.stderr.write(`callbox-guard: ${e instanceof Error ? e.message : String(e)} (nothing changed)\n`);
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2));
}
