/**
 * Secrets at rest. Our own hashes are scrypt (node:crypto) in a
 * self-describing form: scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>. For
 * external Mosquitto the same secret is also hashed in its password-file
 * form, $7$<iterations>$<salt b64>$<hash b64> (PBKDF2-SHA512, as
 * mosquitto_passwd writes for Mosquitto 2.x), at the moment the secret is
 * made: plain secrets are never stored.
 */
import { createHash, pbkdf2, pbkdf2Sync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** For secrets people choose or copy (ops passwords, claim secrets on labels): slow on purpose. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 16_384, r: 8, p: 1 };
/**
 * For secrets the fleet generates (device and fleet credentials: 256 random
 * bits): guessing is hopeless whatever the cost, so the cost is kept low
 * enough that thousands of boxes reconnecting after a broker restart do not
 * queue behind the KDF (about 6 ms per check instead of about 100 ms).
 */
export const MACHINE_SCRYPT: ScryptParams = { N: 1024, r: 8, p: 1 };
const KEY_LEN = 32;

function scryptAsync(secret: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LEN, { ...params, maxmem: 256 * params.N * params.r + 1_048_576 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashSecret(secret: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts;
  const expected = Buffer.from(hash ?? '', 'base64');
  try {
    const key = await scryptAsync(secret, Buffer.from(salt ?? '', 'base64'), {
      N: Number(n),
      r: Number(r),
      p: Number(p),
    });
    return key.length === expected.length && timingSafeEqual(key, expected);
  } catch {
    return false;
  }
}

/** The Mosquitto 2.x password-file hash of a secret ($7$: PBKDF2-SHA512, 101 iterations, 12-byte salt). */
export function mosquittoHash(secret: string, iterations = 101): string {
  const salt = randomBytes(12);
  const key = pbkdf2Sync(secret, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * PBKDF2 iterations for the Mosquitto form of secrets people chose or print (label claim secrets, ops
 * passwords): OWASP's figure for PBKDF2-HMAC-SHA512. Machine secrets (32 random bytes) keep Mosquitto's
 * 101: their entropy, not the work factor, is what protects them.
 */
export const HUMAN_PBKDF2_ITERATIONS = 210_000;

/** mosquittoHash without blocking the event loop (the pbkdf2 work runs in libuv's pool). */
export async function mosquittoHashAsync(secret: string, iterations = 101): Promise<string> {
  const salt = randomBytes(12);
  const key = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(secret, salt, iterations, 64, 'sha512', (err, k) => (err ? reject(err) : resolve(k))),
  );
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A new random secret for a device or a fleet client (URL-safe, 32 bytes of entropy). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A short fingerprint of a secret for caches (never logged). */
export function fingerprint(secret: string | Buffer): string {
  return createHash('sha256').update(secret).digest('base64');
}
