/**
 * Signed releases: a release's MANIFEST.json (program, version, architecture, sha256 of every file; written by
 * scripts/release.mjs) is signed with Ed25519, and the signature travels beside it as MANIFEST.json.sig (base64).
 * The private key stays where releases are made (`fleet release keygen`, `fleet release sign`); boxes and the fleet
 * hold only public keys, several at once so a key can be rotated: sign with the new key, ship boxes a settings
 * change that trusts both, then retire the old one.
 *
 * node:crypto's Ed25519 (RFC 8032): deterministic signatures, small keys, no parameters to get wrong.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { CallboxError, ErrorCode } from './errors.js';

export interface SigningKeyPair {
  privatePem: string;
  publicPem: string;
  /** First 16 hex digits of the sha256 of the public key (DER): names a key in logs and errors. */
  keyId: string;
}

export function keyIdOf(publicPem: string): string {
  const der = createPublicKey(publicPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function generateSigningKey(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem,
    keyId: keyIdOf(publicPem),
  };
}

/** The base64 signature of a manifest's exact bytes. */
export function signManifest(manifest: Buffer, privatePem: string): string {
  const key = createPrivateKey(privatePem);
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `release signing key: got a ${key.asymmetricKeyType} key, expected ed25519`,
    );
  }
  return sign(null, manifest, key).toString('base64');
}

/**
 * Which trusted key signed the manifest; throws a CallboxError naming what is wrong when none did (a modified
 * manifest, a signature from an untrusted key, garbage).
 */
export function verifyManifest(manifest: Buffer, signatureB64: string, trustedPublicPems: readonly string[]): string {
  if (trustedPublicPems.length === 0) {
    throw new CallboxError(ErrorCode.ConfigInvalid, 'no release signing key is trusted: set update.publicKeys');
  }
  const signature = Buffer.from(signatureB64.trim(), 'base64');
  if (signature.length !== 64) {
    throw new CallboxError(
      ErrorCode.UpdateRefused,
      `release signature: got ${signature.length} bytes, expected a 64-byte Ed25519 signature (base64)`,
    );
  }
  for (const pem of trustedPublicPems) {
    if (verify(null, manifest, createPublicKey(pem), signature)) return keyIdOf(pem);
  }
  throw new CallboxError(
    ErrorCode.UpdateRefused,
    `release signature does not match MANIFEST.json for any trusted key (${trustedPublicPems.map(keyIdOf).join(', ')}): ` +
      'the manifest was modified or signed with another key',
  );
}

/** MANIFEST.json of a release (scripts/release.mjs). */
export interface ReleaseManifest {
  program: string;
  version: string;
  arch: string;
  platform: string;
  node: string;
  files: Record<string, string>;
}

export function releaseRefused(message: string): CallboxError {
  return new CallboxError(ErrorCode.UpdateRefused, `update refused: ${message}`);
}

/**
 * Check an unpacked release: MANIFEST.json signed by a trusted key, for the expected program and architecture,
 * and every file present with its sha256, none added, no links. Throws UpdateRefused naming the first problem.
 */
export async function verifyRelease(
  dir: string,
  trustedPublicPems: readonly string[],
  expect: { program?: string; arch?: string } = {},
): Promise<ReleaseManifest> {
  let manifestBytes: Buffer;
  let signature: string;
  try {
    manifestBytes = await readFile(join(dir, 'MANIFEST.json'));
    signature = await readFile(join(dir, 'MANIFEST.json.sig'), 'utf8');
  } catch {
    throw releaseRefused('the release has no MANIFEST.json with its signature MANIFEST.json.sig');
  }
  verifyManifest(manifestBytes, signature, trustedPublicPems);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as ReleaseManifest;
  if (expect.program && manifest.program !== expect.program) {
    throw releaseRefused(`the release is for the ${manifest.program} program, expected ${expect.program}`);
  }
  if (expect.arch && manifest.arch !== expect.arch) {
    throw releaseRefused(`the release is built for ${manifest.arch}, this machine is ${expect.arch}`);
  }
  const seen = new Set<string>();
  for (const file of await regularFiles(dir)) {
    if (file === 'MANIFEST.json' || file === 'MANIFEST.json.sig') continue;
    const want = manifest.files[file];
    if (!want) throw releaseRefused(`${file} is not in the signed manifest`);
    const got = createHash('sha256')
      .update(await readFile(join(dir, file)))
      .digest('hex');
    if (got !== want) throw releaseRefused(`${file} does not match its sha256 in the signed manifest`);
    seen.add(file);
  }
  const missing = Object.keys(manifest.files).filter((f) => !seen.has(f));
  if (missing.length > 0)
    throw releaseRefused(`${missing.length} file(s) of the manifest are missing, first ${missing[0]}`);
  return manifest;
}

async function regularFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) out.push(relative(dir, full));
      else throw releaseRefused(`${relative(dir, full)} is not a regular file (a release carries no links or devices)`);
    }
  }
  await walk(dir);
  return out;
}
