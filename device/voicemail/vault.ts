/**
 * Voicemail at rest on the box: each recording is a WAV file encrypted with
 * AES-256-GCM under a per-box key (dataDir/voicemail.key, 32 random bytes,
 * mode 0600, made on first use). A file is written to a temporary name,
 * fsynced and renamed, so a power cut leaves either the whole recording or
 * nothing. The SHA-256 named in events and acknowledgements is that of the
 * plain WAV: the fleet verifies the same bytes it stores.
 *
 * File layout: "CBVM1" | iv (12) | tag (16) | ciphertext. The sidecar
 * <id>.json holds the metadata (call, number, duration, size, checksum).
 * A recording is deleted only by remove(), which the uploader calls after the
 * fleet acknowledged the same checksum.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

const MAGIC = Buffer.from('CBVM1');

export interface VoicemailMeta {
  voicemailId: string;
  callId: string;
  number: string | null;
  durationMs: number;
  bytes: number;
  sha256: string;
  recordedAt: string;
  /** Why the recording ended (absent in sidecars written before it was recorded). */
  endedBy?: 'hangup' | 'max' | 'silence';
  /** The message holds only silence. */
  empty?: boolean;
}

function writeDurably(path: string, data: Buffer, mode = 0o600): void {
  const fd = openSync(path, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export class VoicemailVault {
  private key: Buffer | undefined;

  constructor(private readonly dir: string) {}

  private async loadKey(): Promise<Buffer> {
    if (this.key) return this.key;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const keyPath = join(this.dir, 'voicemail.key');
    try {
      const k = await readFile(keyPath);
      if (k.length !== 32) throw new CallboxError(ErrorCode.StoreCorrupt, `${keyPath} is not a 32-byte key`);
      this.key = k;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const k = randomBytes(32);
      writeDurably(`${keyPath}.tmp`, k);
      await rename(`${keyPath}.tmp`, keyPath);
      await syncDir(this.dir);
      this.key = k;
    }
    return this.key;
  }

  /** Store a recording durably and encrypted; returns once it survives a power cut. */
  async put(meta: Omit<VoicemailMeta, 'bytes' | 'sha256'>, wav: Buffer): Promise<VoicemailMeta> {
    const key = await this.loadKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([cipher.update(wav), cipher.final()]);
    const file = Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
    const full: VoicemailMeta = { ...meta, bytes: wav.length, sha256: sha256(wav) };
    const base = join(this.dir, meta.voicemailId);
    writeDurably(`${base}.vm.tmp`, file);
    writeDurably(`${base}.json.tmp`, Buffer.from(JSON.stringify(full)));
    await rename(`${base}.vm.tmp`, `${base}.vm`);
    await rename(`${base}.json.tmp`, `${base}.json`);
    await syncDir(this.dir);
    return full;
  }

  /** The plain WAV of a stored recording; StoreCorrupt if it was tampered with. */
  async get(voicemailId: string): Promise<Buffer> {
    const key = await this.loadKey();
    const file = await readFile(join(this.dir, `${voicemailId}.vm`));
    if (!file.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new CallboxError(ErrorCode.StoreCorrupt, `voicemail ${voicemailId} is not a Callbox voicemail file`);
    }
    const iv = file.subarray(5, 17);
    const tag = file.subarray(17, 33);
    try {
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAuthTag(tag);
      return Buffer.concat([d.update(file.subarray(33)), d.final()]);
    } catch {
      throw new CallboxError(ErrorCode.StoreCorrupt, `voicemail ${voicemailId} failed its integrity check`);
    }
  }

  /** Recordings waiting for the fleet, oldest first. Half-written temporaries are ignored. */
  async pending(): Promise<VoicemailMeta[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const metas: VoicemailMeta[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      const id = n.slice(0, -5);
      if (!names.includes(`${id}.vm`)) continue;
      metas.push(JSON.parse(await readFile(join(this.dir, n), 'utf8')) as VoicemailMeta);
    }
    return metas.sort((a, b) => a.recordedAt.localeCompare(b.recordedAt));
  }

  async remove(voicemailId: string): Promise<void> {
    await rm(join(this.dir, `${voicemailId}.vm`), { force: true });
    await rm(join(this.dir, `${voicemailId}.json`), { force: true });
    await syncDir(this.dir);
  }
}

/** A 16-bit mono PCM WAV file around raw samples. */
export function wavOf(pcm: Buffer, rate: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + pcm.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}
