/**
 * Release slots on the box, for over-the-air updates with automatic rollback (the install half; the fleet's
 * rollout and the download over MQTT build on it).
 *
 * Layout under the install root (/opt/callbox):
 *   releases/<version>/    verified, unpacked releases (the running one, the one before it, a new one)
 *   current -> releases/<version>   what systemd starts (ExecStart=/usr/bin/node /opt/callbox/current/dist/...)
 * and in the box's data folder, update-state.json: what is running, what ran before, and a pending update.
 *
 * An update, as Mender and RAUC do it with A/B partitions, here with folders and one symlink:
 *  1. stage(): unpack the tarball beside the running release, check its signature (shared/release-signature.ts)
 *     and every file's sha256 against the signed manifest, refuse anything not newer, not for this program or
 *     not for this architecture; only a release that passed is renamed into releases/<version>.
 *  2. activate(): record the pending update durably (which version, from which, by when it must confirm), then
 *     switch `current` with an atomic rename of a new symlink over it, and restart.
 *  3. The new program calls confirm() once it is healthy (store opens, modem answers AT, MQTT connected, panic
 *     input watched). Before every start, guard() (run by systemd as ExecStartPre) switches back to the previous
 *     release when the new one did not confirm within its deadline or failed to start too often, and records why.
 * A power cut at any point leaves either the old or the new release in `current`, never a half-written one: the
 * rename of the symlink is the only switch, and the state is written (temp file, fsync, rename) before it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type ReleaseManifest, releaseRefused, verifyRelease } from '../../shared/release-signature.js';
import { runGuard } from './guard.mjs';

export interface PendingUpdate {
  version: string;
  from: string;
  activatedAt: string;
  /** The new release must confirm before this time (ISO). */
  deadline: string;
  /** Starts of the new release seen by guard() (a crash loop is a failed update too). */
  starts: number;
  /** The fleet's rollout that offered it (reported back with the outcome). */
  rolloutId?: string;
  /** The health checks still failing, as last seen by the running release (part of a rollback's reason). */
  health?: string;
}

export interface UpdateOutcome {
  version: string;
  outcome: 'committed' | 'rolled_back';
  reason?: string;
  at: string;
  rolloutId?: string;
  /** The fleet has been told (device/update/feature.ts). */
  reported?: boolean;
}

export interface UpdateState {
  v: 1;
  pending: PendingUpdate | null;
  last: UpdateOutcome | null;
}

const EMPTY: UpdateState = { v: 1, pending: null, last: null };

/** Numeric x.y.z comparison (pre-release suffixes are not used by Callbox releases). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export interface SlotsOptions {
  /** The install root: releases/ and the `current` link live here. */
  root: string;
  /** The box's data folder (update-state.json). */
  dataDir: string;
  /** Trusted release signing keys (PEM). */
  publicKeys: readonly string[];
  program?: string;
  arch?: string;
  now?: () => Date;
}

export class ReleaseSlots {
  private readonly program: string;
  private readonly arch: string;
  private readonly now: () => Date;

  constructor(private readonly opts: SlotsOptions) {
    this.program = opts.program ?? 'device';
    this.arch = opts.arch ?? process.arch;
    this.now = opts.now ?? (() => new Date());
  }

  private get stateFile(): string {
    return join(this.opts.dataDir, 'update-state.json');
  }

  private get currentLink(): string {
    return join(this.opts.root, 'current');
  }

  async state(): Promise<UpdateState> {
    try {
      return { ...EMPTY, ...(JSON.parse(await readFile(this.stateFile, 'utf8')) as UpdateState) };
    } catch {
      return { ...EMPTY };
    }
  }

  private async writeState(s: UpdateState): Promise<void> {
    await writeDurably(this.stateFile, `${JSON.stringify(s, null, 2)}\n`);
  }

  /** The version `current` points at, or null before the first install. */
  async currentVersion(): Promise<string | null> {
    try {
      const target = await readlink(this.currentLink);
      return target.split('/').filter(Boolean).pop() ?? null;
    } catch {
      return null;
    }
  }

  /**
   * Unpack a release tarball beside the running one and verify it; returns its version. Nothing under releases/
   * changes unless every check passed.
   */
  async stage(tarball: string): Promise<string> {
    const releases = join(this.opts.root, 'releases');
    await mkdir(releases, { recursive: true });
    const staging = join(releases, `.staging-${randomBytes(4).toString('hex')}`);
    await mkdir(staging);
    try {
      await promisify(execFile)('tar', ['-xzf', tarball, '-C', staging, '--strip-components=1', '--no-same-owner']);
      const manifest = await this.verify(staging);
      const running = await this.currentVersion();
      if (running && compareVersions(manifest.version, running) <= 0) {
        throw releaseRefused(`release ${manifest.version} is not newer than the running ${running}`);
      }
      const target = join(releases, manifest.version);
      await rm(target, { recursive: true, force: true });
      await rename(staging, target);
      return manifest.version;
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw e;
    }
  }

  /** Signature, program, architecture, and every file's sha256 against the manifest (shared/release-signature.ts). */
  verify(dir: string): Promise<ReleaseManifest> {
    return verifyRelease(dir, this.opts.publicKeys, { program: this.program, arch: this.arch });
  }

  /**
   * Switch to a staged release: the pending update is recorded first (durably), then `current` is replaced by an
   * atomic rename. The caller restarts the program; the new one must confirm() within `confirmWithinMs`.
   */
  async activate(version: string, confirmWithinMs: number, rolloutId?: string): Promise<void> {
    const target = join(this.opts.root, 'releases', version);
    if (!existsSync(join(target, 'MANIFEST.json'))) throw releaseRefused(`release ${version} is not staged`);
    const from = (await this.currentVersion()) ?? '';
    const now = this.now();
    const s = await this.state();
    s.pending = {
      version,
      from,
      activatedAt: now.toISOString(),
      deadline: new Date(now.getTime() + confirmWithinMs).toISOString(),
      starts: 0,
      ...(rolloutId ? { rolloutId } : {}),
    };
    await this.writeState(s);
    await this.point(version);
  }

  private async point(version: string): Promise<void> {
    const next = `${this.currentLink}.next`;
    await rm(next, { force: true });
    await symlink(join('releases', version), next);
    await rename(next, this.currentLink);
    await fsyncDir(this.opts.root);
  }

  /**
   * Before every start (systemd ExecStartPre): count the start of a pending release, and switch back to the one
   * before when it did not confirm in time or failed to start more than `maxStarts` times. Returns what it did.
   */
  async guard(maxStarts = 3): Promise<'none' | 'counted' | 'rolled_back'> {
    // The same code systemd runs before every start (guard.mjs, plain JavaScript).
    return runGuard({ root: this.opts.root, dataDir: this.opts.dataDir, maxStarts, now: this.now() });
  }

  /** Note which health checks still fail (a rollback's reason names them). */
  async noteHealth(detail: string): Promise<void> {
    const s = await this.state();
    if (!s.pending || s.pending.health === detail) return;
    s.pending.health = detail;
    await this.writeState(s);
  }

  /** The outcome in `last` has been reported to the fleet. */
  async markReported(): Promise<void> {
    const s = await this.state();
    if (!s.last || s.last.reported) return;
    s.last.reported = true;
    await this.writeState(s);
  }

  /** The running release is healthy: the pending update is committed (the previous release stays as fallback). */
  async confirm(): Promise<UpdateOutcome | null> {
    const s = await this.state();
    const p = s.pending;
    if (!p || (await this.currentVersion()) !== p.version) return null;
    s.pending = null;
    s.last = {
      version: p.version,
      outcome: 'committed',
      at: this.now().toISOString(),
      ...(p.rolloutId ? { rolloutId: p.rolloutId } : {}),
      reported: false,
    };
    await this.writeState(s);
    return s.last;
  }

  /** Remove releases other than the running one and `keep` (the fallback). */
  async prune(keep: string | null): Promise<string[]> {
    const running = await this.currentVersion();
    const removed: string[] = [];
    const dir = join(this.opts.root, 'releases');
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name === running || name === keep || name.startsWith('.')) continue;
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    }
    return removed;
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(dirname(file));
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
