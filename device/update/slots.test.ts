/**
 * Release slots: a signed release is verified before it is staged, activation switches one symlink, the new
 * release is kept only if it confirms its health in time, and guard() switches back by itself otherwise. Releases
 * here are small tarballs made in the test with the same manifest format as scripts/release.mjs.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import { generateSigningKey, signManifest } from '../../shared/release-signature.js';
import { compareVersions, ReleaseSlots } from './slots.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'callbox-slots-'));
  dirs.push(d);
  return d;
}

const key = generateSigningKey();
const otherKey = generateSigningKey();

interface Make {
  version: string;
  program?: string;
  arch?: string;
  signWith?: string | null;
  tamper?: (dir: string) => void;
}

/** A release tarball: files, a manifest of their sha256, its signature. */
function makeRelease(work: string, m: Make): string {
  const name = `callbox-${m.program ?? 'device'}-${m.version}`;
  const dir = join(work, name);
  mkdirSync(join(dir, 'dist', 'device'), { recursive: true });
  const files: Record<string, string> = {};
  for (const [file, text] of [
    ['dist/device/main.js', `console.log('box ${m.version}')\n`],
    ['package.json', `{"version":"${m.version}"}\n`],
  ] as const) {
    writeFileSync(join(dir, file), text);
    files[file] = createHash('sha256').update(text).digest('hex');
  }
  const manifest = Buffer.from(
    JSON.stringify({
      program: m.program ?? 'device',
      version: m.version,
      arch: m.arch ?? process.arch,
      platform: 'linux',
      node: process.versions.node,
      files,
    }),
  );
  writeFileSync(join(dir, 'MANIFEST.json'), manifest);
  if (m.signWith !== null)
    writeFileSync(join(dir, 'MANIFEST.json.sig'), signManifest(manifest, m.signWith ?? key.privatePem));
  m.tamper?.(dir);
  const tarball = join(work, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', work, name]);
  return tarball;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(isCallboxError(e, ErrorCode.UpdateRefused), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

function setup(now = () => new Date('2026-12-01T10:00:00Z')) {
  const root = tmp();
  const dataDir = tmp();
  const work = tmp();
  const slots = new ReleaseSlots({ root, dataDir, publicKeys: [key.publicPem], now: () => now() });
  return { root, dataDir, work, slots };
}

describe('release slots', () => {
  it('compares versions numerically', () => {
    expect(compareVersions('0.10.0', '0.9.9')).toBe(1);
    expect(compareVersions('1.2.3', '1.2.3')).toBe(0);
    expect(compareVersions('1.2', '1.2.1')).toBe(-1);
  });

  it('stages a signed release, switches to it, and keeps it once it confirms', async () => {
    const { root, work, slots } = setup();
    await slots.activate(await slots.stage(makeRelease(work, { version: '1.0.0' })), 60_000);
    expect(await slots.confirm()).toMatchObject({ version: '1.0.0', outcome: 'committed' });
    const v2 = await slots.stage(makeRelease(work, { version: '1.1.0' }));
    expect(v2).toBe('1.1.0');
    expect(await slots.currentVersion()).toBe('1.0.0');
    await slots.activate(v2, 60_000);
    expect(readlinkSync(join(root, 'current'))).toBe(join('releases', '1.1.0'));
    expect(readFileSync(join(root, 'current', 'dist', 'device', 'main.js'), 'utf8')).toContain('1.1.0');
    expect(await slots.guard()).toBe('counted');
    expect(await slots.confirm()).toMatchObject({ version: '1.1.0', outcome: 'committed' });
    expect(await slots.guard()).toBe('none');
    expect(await slots.prune('1.0.0')).toEqual([]);
  });

  it('rolls back by itself when the new release does not confirm in time', async () => {
    let now = new Date('2026-12-01T10:00:00Z');
    const { work, slots } = setup(() => now);
    await slots.activate(await slots.stage(makeRelease(work, { version: '1.0.0' })), 60_000);
    await slots.confirm();
    await slots.activate(await slots.stage(makeRelease(work, { version: '2.0.0' })), 60_000);
    expect(await slots.guard()).toBe('counted');
    now = new Date('2026-12-01T10:01:01Z');
    expect(await slots.guard()).toBe('rolled_back');
    expect(await slots.currentVersion()).toBe('1.0.0');
    expect((await slots.state()).last).toMatchObject({
      version: '2.0.0',
      outcome: 'rolled_back',
      reason: expect.stringMatching(/did not confirm its health before/),
    });
    // A late confirm from the rolled-back release changes nothing.
    expect(await slots.confirm()).toBeNull();
  });

  it('rolls back a release that keeps failing to start', async () => {
    const { work, slots } = setup();
    await slots.activate(await slots.stage(makeRelease(work, { version: '1.0.0' })), 60_000);
    await slots.confirm();
    await slots.activate(await slots.stage(makeRelease(work, { version: '3.0.0' })), 3_600_000);
    for (let i = 0; i < 3; i++) expect(await slots.guard(3)).toBe('counted');
    expect(await slots.guard(3)).toBe('rolled_back');
    expect(await slots.currentVersion()).toBe('1.0.0');
    expect((await slots.state()).last?.reason).toMatch(/failed to start 3 time/);
  });

  it('names the failing health checks and the rollout in a rollback, reported once', async () => {
    let now = new Date('2026-12-01T10:00:00Z');
    const { work, slots } = setup(() => now);
    await slots.activate(await slots.stage(makeRelease(work, { version: '1.0.0' })), 60_000);
    await slots.confirm();
    await slots.activate(await slots.stage(makeRelease(work, { version: '2.0.0' })), 60_000, 'rollout-7');
    expect(await slots.guard()).toBe('counted');
    await slots.noteHealth('modem does not answer AT (not ready)');
    now = new Date('2026-12-01T10:02:00Z');
    expect(await slots.guard()).toBe('rolled_back');
    const last = (await slots.state()).last;
    expect(last).toMatchObject({ version: '2.0.0', outcome: 'rolled_back', rolloutId: 'rollout-7', reported: false });
    expect(last?.reason).toMatch(/did not confirm its health before .*: modem does not answer AT/);
    await slots.markReported();
    expect((await slots.state()).last?.reported).toBe(true);
  });

  it('refuses a bad signature, an untrusted key, a modified or extra file, an older version, another program', async () => {
    const { root, work, slots } = setup();
    await slots.activate(await slots.stage(makeRelease(work, { version: '1.0.0' })), 60_000);
    await slots.confirm();
    expect(await refusal(slots.stage(makeRelease(work, { version: '1.1.0', signWith: otherKey.privatePem })))).toMatch(
      /does not match MANIFEST.json for any trusted key/,
    );
    expect(await refusal(slots.stage(makeRelease(work, { version: '1.1.1', signWith: null })))).toMatch(
      /no MANIFEST.json with its signature/,
    );
    const modified = makeRelease(work, {
      version: '1.2.0',
      tamper: (d) => writeFileSync(join(d, 'dist', 'device', 'main.js'), 'evil()\n'),
    });
    expect(await refusal(slots.stage(modified))).toMatch(/dist\/device\/main.js does not match its sha256/);
    const extra = makeRelease(work, { version: '1.3.0', tamper: (d) => writeFileSync(join(d, 'extra.js'), 'x\n') });
    expect(await refusal(slots.stage(extra))).toMatch(/extra.js is not in the signed manifest/);
    const link = makeRelease(work, { version: '1.4.0', tamper: (d) => symlinkSync('/etc/passwd', join(d, 'passwd')) });
    expect(await refusal(slots.stage(link))).toMatch(/passwd is not a regular file/);
    expect(await refusal(slots.stage(makeRelease(work, { version: '0.9.0' })))).toMatch(
      /not newer than the running 1.0.0/,
    );
    expect(await refusal(slots.stage(makeRelease(work, { version: '5.0.0', program: 'fleet' })))).toMatch(
      /for the fleet program/,
    );
    expect(await refusal(slots.stage(makeRelease(work, { version: '5.0.1', arch: 'mips' })))).toMatch(/built for mips/);
    // Nothing was left behind by the refusals, and the running release did not change.
    expect(
      execFileSync('ls', ['-A', join(root, 'releases')])
        .toString()
        .trim()
        .split('\n'),
    ).toEqual(['1.0.0']);
    expect(await slots.currentVersion()).toBe('1.0.0');
  });

  it('treats a switch that never happened (killed after recording it) as no update', async () => {
    const { work, dataDir, slots } = setup();
    await slots.activate(await slots.stage(makeRelease(work, { version: '1.0.0' })), 60_000);
    await slots.confirm();
    await slots.stage(makeRelease(work, { version: '1.1.0' }));
    writeFileSync(
      join(dataDir, 'update-state.json'),
      JSON.stringify({
        v: 1,
        pending: { version: '1.1.0', from: '1.0.0', activatedAt: '', deadline: '2099-01-01T00:00:00Z', starts: 0 },
        last: null,
      }),
    );
    expect(await slots.guard()).toBe('none');
    expect((await slots.state()).pending).toBeNull();
    expect(await slots.currentVersion()).toBe('1.0.0');
  });
});
