/**
 * Patient data encrypted at rest at the fleet: caller numbers and SMS texts
 * in stored events, and voicemail recordings, under AES-256-GCM (node:crypto)
 * with keys from a key file kept apart from the data (store.keyFile).
 *
 * The key file holds one key per line, "<id> <base64 of 32 bytes>"; the last
 * line is the current key (new data), every line can still decrypt (old
 * data). It is created at the first start (mode 0600, in a 0700 folder) with
 * one random key. Rotation: append a new line (`fleet keys rotate` does it,
 * or `echo "k2 $(openssl rand -base64 32)" >> fleet.key`) and restart; keep
 * old lines as long as data sealed with them is kept. docs/SECURITY.md.
 *
 * Sealed text: "enc:v1:<keyId>:<iv>:<ciphertext+tag>" (base64url), so a
 * field sealed and one written before encryption existed can sit side by
 * side and both be read. Sealed bytes (voicemail): "CBE1", the key id's
 * length and bytes, the 12-byte IV, the 16-byte tag, the ciphertext.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

const TEXT_PREFIX = 'enc:v1:';
const MAGIC = Buffer.from('CBE1');
const KEY_ID = /^[A-Za-z0-9._-]{1,32}$/;

/** Keys of event bodies whose string values are patient data (or staff numbers: sealed alike). */
export const PATIENT_FIELDS = new Set(['number', 'from', 'to', 'text', 'caller']);

export class PatientCipher {
  private constructor(
    private readonly keys: Map<string, Buffer>,
    private readonly currentId: string,
  ) {}

  /** Read the key file (creating it with one new key when missing). */
  static open(keyFile: string): PatientCipher {
    if (!existsSync(keyFile)) {
      mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
      // Written whole under a temporary name, then linked: a reader never sees a half-written key file.
      const tmp = `${keyFile}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `k1 ${randomBytes(32).toString('base64')}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(tmp, keyFile); // fails if another process made it first: theirs is kept
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
    }
    chmodSync(keyFile, 0o600);
    return PatientCipher.parse(readFileSync(keyFile, 'utf8'), keyFile);
  }

  static parse(text: string, where = 'the key file'): PatientCipher {
    const keys = new Map<string, Buffer>();
    let current = '';
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const [id, b64, extra] = line.split(/\s+/);
      const key = b64 ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
      if (!id || !KEY_ID.test(id) || key.length !== 32 || extra !== undefined) {
        throw new CallboxError(
          ErrorCode.ConfigInvalid,
          `${where} line ${i + 1} is not "<id> <base64 of 32 bytes>" (id: letters, digits, . _ -; make a key with \`openssl rand -base64 32\`)`,
        );
      }
      keys.set(id, key);
      current = id;
    }
    if (!current) throw new CallboxError(ErrorCode.ConfigInvalid, `${where} holds no key`);
    return new PatientCipher(keys, current);
  }

  get keyId(): string {
    return this.currentId;
  }

  hasKey(id: string): boolean {
    return this.keys.has(id);
  }

  private key(id: string): Buffer {
    const k = this.keys.get(id);
    if (!k) {
      throw new CallboxError(
        ErrorCode.StoreCorrupt,
        `data sealed with key "${id}", which the key file no longer holds (put the old line back)`,
      );
    }
    return k;
  }

  /**
   * A 32-byte key for another purpose (the figures' keyed hash of caller numbers), derived with HKDF-SHA256
   * from the key file's first key, so it stays the same across rotations.
   */
  deriveKey(purpose: string): Buffer {
    const first = this.keys.values().next().value as Buffer;
    return Buffer.from(hkdfSync('sha256', first, Buffer.alloc(0), `callbox:${purpose}`, 32));
  }

  sealText(plain: string): string {
    if (plain.startsWith(TEXT_PREFIX)) return plain;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key(this.currentId), iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final(), c.getAuthTag()]);
    return `${TEXT_PREFIX}${this.currentId}:${iv.toString('base64url')}:${ct.toString('base64url')}`;
  }

  openText(value: string): string {
    if (!value.startsWith(TEXT_PREFIX)) return value;
    const [id, ivB64, ctB64] = value.slice(TEXT_PREFIX.length).split(':');
    const data = Buffer.from(ctB64 ?? '', 'base64url');
    const d = createDecipheriv('aes-256-gcm', this.key(id ?? ''), Buffer.from(ivB64 ?? '', 'base64url'));
    d.setAuthTag(data.subarray(data.length - 16));
    return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString('utf8');
  }

  /** A copy of a JSON value with the string values of PATIENT_FIELDS sealed. */
  sealFields<T>(value: T): T {
    return walk(value, (s) => this.sealText(s)) as T;
  }

  /** A copy with sealed fields opened (plain ones are left as they are). */
  openFields<T>(value: T): T {
    return walk(value, (s) => this.openText(s)) as T;
  }

  sealBytes(plain: Buffer): Buffer {
    const iv = randomBytes(12);
    const id = Buffer.from(this.currentId, 'utf8');
    const c = createCipheriv('aes-256-gcm', this.key(this.currentId), iv);
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([MAGIC, Buffer.from([id.length]), id, iv, c.getAuthTag(), ct]);
  }

  openBytes(sealed: Buffer): Buffer {
    if (!sealed.subarray(0, 4).equals(MAGIC)) return sealed; // written before encryption
    const idLen = sealed[4] ?? 0;
    const id = sealed.subarray(5, 5 + idLen).toString('utf8');
    let at = 5 + idLen;
    const iv = sealed.subarray(at, at + 12);
    at += 12;
    const tag = sealed.subarray(at, at + 16);
    at += 16;
    const d = createDecipheriv('aes-256-gcm', this.key(id), iv);
    d.setAuthTag(tag);
    return Buffer.concat([d.update(sealed.subarray(at)), d.final()]);
  }
}

function walk(value: unknown, f: (s: string) => string, key = ''): unknown {
  if (typeof value === 'string') return PATIENT_FIELDS.has(key) ? f(value) : value;
  if (Array.isArray(value)) return value.map((v) => walk(v, f, key));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, f, k);
    return out;
  }
  return value;
}

/** Append a new key and make it the current one; returns its id. */
export function rotateKey(keyFile: string): string {
  const cipher = PatientCipher.open(keyFile);
  let n = Number(/^k(\d+)$/.exec(cipher.keyId)?.[1] ?? '0') + 1;
  while (cipher.hasKey(`k${n}`)) n++;
  const id = `k${n}`;
  const fd = openSync(keyFile, 'a', 0o600);
  try {
    writeSync(fd, `${id} ${randomBytes(32).toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return id;
}
