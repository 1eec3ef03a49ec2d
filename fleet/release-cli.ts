/**
 * `fleet release …`: the offline half of signed updates, run where the release signing key is kept (not on the
 * fleet server, which holds only the public key):
 *   fleet release keygen --out DIR        a new Ed25519 key pair: DIR/release-signing.key (0600), .pub
 *   fleet release sign RELEASE --key KEY  sign an unpacked release folder or a release tarball from
 *                                         `npm run release` (MANIFEST.json.sig is written into it)
 *   fleet release verify RELEASE --pub PUB  check the signature and every file against the signed manifest
 * No connection to the fleet is made.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { generateSigningKey, keyIdOf, signManifest, verifyRelease } from '../shared/release-signature.js';

const run = promisify(execFile);

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new CallboxError(ErrorCode.ConfigFileUnreadable, `cannot read the ${what} ${file}: ${(e as Error).message}`);
  }
}

/** Run `work` on the release as a folder: the folder itself, or a tarball unpacked and packed again afterwards. */
async function withReleaseDir<T>(release: string, write: boolean, work: (dir: string) => Promise<T>): Promise<T> {
  if (!existsSync(release)) {
    throw new CallboxError(
      ErrorCode.NotFound,
      `release ${release} does not exist (a folder or a .tar.gz from npm run release)`,
    );
  }
  if (statSync(release).isDirectory()) return work(release);
  const tmp = mkdtempSync(join(tmpdir(), 'callbox-release-'));
  try {
    await run('tar', ['-xzf', release, '-C', tmp]);
    const [top] = readdirSync(tmp);
    if (!top) throw new CallboxError(ErrorCode.ValidationFailed, `${release} is an empty archive`);
    const result = await work(join(tmp, top));
    if (write) await run('tar', ['-czf', release, '-C', tmp, top]);
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function addReleaseCommands(program: Command, out: (s: string) => void, json: () => boolean): Command {
  const release = program
    .command('release')
    .description('signed releases for over-the-air updates: keygen, sign, verify (offline); upload, rollout (fleet)');
  release
    .command('keygen')
    .description('make a new Ed25519 release signing key pair')
    .requiredOption('--out <dir>', 'folder for release-signing.key (keep it offline) and release-signing.pub')
    .action((o: { out: string }) => {
      const keyFile = join(o.out, 'release-signing.key');
      if (existsSync(keyFile)) {
        throw new CallboxError(
          ErrorCode.Conflict,
          `${keyFile} exists: a signing key is never overwritten; choose another --out`,
        );
      }
      mkdirSync(o.out, { recursive: true, mode: 0o700 });
      const k = generateSigningKey();
      writeFileSync(keyFile, k.privatePem, { mode: 0o600, flag: 'wx' });
      writeFileSync(join(o.out, 'release-signing.pub'), k.publicPem, { mode: 0o644 });
      const result = { keyId: k.keyId, privateKey: keyFile, publicKey: join(o.out, 'release-signing.pub') };
      out(
        `${json() ? JSON.stringify(result, null, 2) : `key ${k.keyId}: private ${keyFile} (keep offline), public ${result.publicKey} (give to the fleet and the boxes)`}\n`,
      );
    });
  release
    .command('sign <release>')
    .description('sign a release folder or tarball (writes MANIFEST.json.sig into it)')
    .requiredOption('--key <file>', 'the private signing key (PEM)')
    .action(async (target: string, o: { key: string }) => {
      const privatePem = readText(o.key, 'signing key');
      const result = await withReleaseDir(target, true, async (dir) => {
        const manifest = readFileSync(join(dir, 'MANIFEST.json'));
        writeFileSync(join(dir, 'MANIFEST.json.sig'), `${signManifest(manifest, privatePem)}\n`);
        const m = JSON.parse(manifest.toString('utf8')) as { program: string; version: string; arch: string };
        return { release: basename(target), program: m.program, version: m.version, arch: m.arch };
      });
      out(
        `${json() ? JSON.stringify(result, null, 2) : `signed ${result.program} ${result.version} (${result.arch}): ${target}`}\n`,
      );
    });
  release
    .command('verify <release>')
    .description('check a release: signature by a trusted key, every file against the signed manifest')
    .requiredOption('--pub <file...>', 'trusted public key(s) (PEM)')
    .action(async (target: string, o: { pub: string[] }) => {
      const keys = o.pub.map((f) => readText(f, 'public key'));
      const manifest = await withReleaseDir(target, false, (dir) => verifyRelease(dir, keys));
      const result = {
        program: manifest.program,
        version: manifest.version,
        arch: manifest.arch,
        files: Object.keys(manifest.files).length,
        trustedKeys: keys.map(keyIdOf),
      };
      out(
        `${json() ? JSON.stringify(result, null, 2) : `${result.program} ${result.version} (${result.arch}): signature and ${result.files} files verified`}\n`,
      );
    });
  return release;
}
