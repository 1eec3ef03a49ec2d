/**
 * `fleet release keygen | sign | verify`, offline: a release tarball signed with a new key verifies against its
 * public key and is refused against another key or once a file in it changed; a key is never overwritten.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../fleet/cli.js';

const work = mkdtempSync(join(tmpdir(), 'callbox-release-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    env: {},
  });
  return { code, out, err };
}

function tarball(name: string, tamper?: (dir: string) => void): string {
  const dir = join(work, 'src', name);
  mkdirSync(join(dir, 'dist', 'device'), { recursive: true });
  const main = "console.log('box')\n";
  writeFileSync(join(dir, 'dist', 'device', 'main.js'), main);
  writeFileSync(
    join(dir, 'MANIFEST.json'),
    JSON.stringify({
      program: 'device',
      version: '1.2.3',
      arch: process.arch,
      platform: 'linux',
      node: process.versions.node,
      files: { 'dist/device/main.js': createHash('sha256').update(main).digest('hex') },
    }),
  );
  tamper?.(dir);
  const file = join(work, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', join(work, 'src'), name]);
  return file;
}

describe('fleet release', () => {
  it('makes a key pair, signs a tarball, verifies it, and refuses another key or a changed file', async () => {
    const keys = join(work, 'keys');
    const gen = await cli('--json', 'release', 'keygen', '--out', keys);
    expect(gen.code, gen.err).toBe(0);
    const { keyId } = JSON.parse(gen.out) as { keyId: string };
    expect(keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(statSync(join(keys, 'release-signing.key')).mode & 0o777).toBe(0o600);
    const again = await cli('release', 'keygen', '--out', keys);
    expect(again.code).toBe(6);
    expect(again.err).toMatch(/never overwritten/);

    const rel = tarball('callbox-device-1.2.3');
    const signed = await cli('release', 'sign', rel, '--key', join(keys, 'release-signing.key'));
    expect(signed.code, signed.err).toBe(0);
    expect(signed.out).toMatch(/signed device 1.2.3/);
    const ok = await cli('--json', 'release', 'verify', rel, '--pub', join(keys, 'release-signing.pub'));
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ program: 'device', version: '1.2.3', files: 1, trustedKeys: [keyId] });

    const other = join(work, 'other');
    await cli('release', 'keygen', '--out', other);
    const wrongKey = await cli('release', 'verify', rel, '--pub', join(other, 'release-signing.pub'));
    expect(wrongKey.code).toBe(6);
    expect(wrongKey.err).toMatch(/does not match MANIFEST.json for any trusted key/);
    // Rotation: trusting both keys accepts it.
    const both = await cli(
      'release',
      'verify',
      rel,
      '--pub',
      join(other, 'release-signing.pub'),
      join(keys, 'release-signing.pub'),
    );
    expect(both.code, both.err).toBe(0);

    // Sign, then change a file inside: refused.
    const dir = join(work, 'changed');
    mkdirSync(dir);
    execFileSync('tar', ['-xzf', rel, '-C', dir]);
    writeFileSync(join(dir, 'callbox-device-1.2.3', 'dist', 'device', 'main.js'), 'evil()\n');
    const changed = await cli(
      'release',
      'verify',
      join(dir, 'callbox-device-1.2.3'),
      '--pub',
      join(keys, 'release-signing.pub'),
    );
    expect(changed.code).toBe(6);
    expect(changed.err).toMatch(/dist\/device\/main.js does not match its sha256/);
    expect(readFileSync(join(dir, 'callbox-device-1.2.3', 'MANIFEST.json.sig'), 'utf8')).toMatch(/^[A-Za-z0-9+/=]+\n$/);
  });

  it('says what a release is when the path is wrong', async () => {
    const r = await cli('release', 'sign', join(work, 'nope.tar.gz'), '--key', join(work, 'nokey'));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/cannot read the signing key|does not exist/);
  });
});
