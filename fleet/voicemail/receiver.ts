/**
 * Receives voicemail uploads: keeps each chunk on disk as it arrives, and
 * when a recording is whole verifies its SHA-256 before storing it and
 * answering "complete" with that checksum (only then may the box delete its
 * copy). Answers "missing" with the indexes it lacks when the last chunk
 * arrives with gaps, and "checksum_mismatch" when the bytes do not match
 * (the parts are dropped and the box sends them all again). A chunk for a
 * recording already stored is answered "complete" again: uploads are
 * idempotent and resumable across restarts of either side.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { type VoicemailAck, type VoicemailChunk, VoicemailChunkSchema } from '../../shared/contract/messages.js';
import { deviceTopics, FLEET_SUBSCRIPTIONS, parseTopic } from '../../shared/contract/topics.js';
import { getLogger } from '../../shared/log.js';
import { decodePayload } from '../../shared/validate.js';
import type { PatientCipher } from '../crypto/patient-data.js';

export interface StoredVoicemail {
  deviceId: string;
  voicemailId: string;
  path: string;
  bytes: number;
  sha256: string;
}

function writeDurably(path: string, data: Buffer): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Every chunk but the last holds at least this many bytes (the contract's VoicemailChunk). */
export const MIN_CHUNK_BYTES = 1024;

/**
 * A chunk's index and count bounded by the recording's announced size, so the
 * parts kept on disk and the "missing" list answered stay within what the
 * recording can need (a 200-byte chunk cannot claim to be 1 of 100 000).
 */
export function checkChunkBounds(chunk: VoicemailChunk): void {
  const bytes = Buffer.byteLength(chunk.data, 'base64');
  const most = Math.max(1, Math.ceil(chunk.totalBytes / MIN_CHUNK_BYTES));
  if (chunk.count > most) {
    throw new Error(
      `count ${chunk.count} is more than a recording of ${chunk.totalBytes} bytes can have (at most ${most}: chunks hold at least ${MIN_CHUNK_BYTES} bytes but the last)`,
    );
  }
  if (chunk.index >= chunk.count) throw new Error(`index ${chunk.index} >= count ${chunk.count}`);
  if (bytes > chunk.totalBytes)
    throw new Error(`chunk of ${bytes} bytes is larger than the whole (${chunk.totalBytes})`);
  if (chunk.index < chunk.count - 1 && bytes < MIN_CHUNK_BYTES) {
    throw new Error(
      `chunk ${chunk.index} holds ${bytes} bytes; every chunk but the last holds at least ${MIN_CHUNK_BYTES}`,
    );
  }
}

export class VoicemailReceiver {
  private readonly log = getLogger('fleet:voicemail');
  private readonly onMessage = (topic: string, payload: Buffer) => {
    const parsed = parseTopic(topic);
    if (parsed?.key !== 'voicemailChunk' || !parsed.deviceId) return;
    void this.handle(parsed.deviceId, payload).catch((err) => this.log.error({ err, topic }, 'voicemail chunk failed'));
  };
  /** Serialises work per recording. */
  private readonly locks = new Map<string, Promise<void>>();
  rejected = 0;

  constructor(
    private readonly client: MqttClient,
    private readonly dir: string,
    private readonly onStored: (v: StoredVoicemail) => void | Promise<void> = () => undefined,
    /** Seals recordings and their parts at rest; none: kept as sent (tests of the receiver alone). */
    private readonly cipher?: PatientCipher,
  ) {}

  private seal(data: Buffer): Buffer {
    return this.cipher ? this.cipher.sealBytes(data) : data;
  }

  private async readOpen(path: string): Promise<Buffer> {
    const data = await readFile(path);
    return this.cipher ? this.cipher.openBytes(data) : data;
  }

  /** A stored recording, decrypted. */
  read(deviceId: string, voicemailId: string): Promise<Buffer> {
    return this.readOpen(this.pathOf(deviceId, voicemailId));
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.client.on('message', this.onMessage);
    await this.client.subscribeAsync(FLEET_SUBSCRIPTIONS.voicemailChunk, { qos: 1 });
  }

  stop(): void {
    this.client.off('message', this.onMessage);
  }

  pathOf(deviceId: string, voicemailId: string): string {
    return join(this.dir, deviceId, `${voicemailId}.wav`);
  }

  private async handle(deviceId: string, payload: Buffer): Promise<void> {
    let chunk: VoicemailChunk;
    try {
      chunk = decodePayload(VoicemailChunkSchema, payload, 'voicemail chunk');
      checkChunkBounds(chunk);
    } catch (err) {
      this.rejected++;
      this.log.warn({ err, deviceId }, 'voicemail chunk rejected');
      return;
    }
    const key = `${deviceId}/${chunk.voicemailId}`;
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(() => this.apply(deviceId, chunk));
    this.locks.set(
      key,
      next.catch(() => undefined),
    );
    await next;
    if (this.locks.get(key) === next) this.locks.delete(key);
  }

  private async apply(deviceId: string, chunk: VoicemailChunk): Promise<void> {
    const final = this.pathOf(deviceId, chunk.voicemailId);
    if (await exists(final)) {
      const sha = createHash('sha256')
        .update(await this.readOpen(final))
        .digest('hex');
      if (sha === chunk.sha256) {
        this.ack(deviceId, { state: 'complete', voicemailId: chunk.voicemailId, sha256: sha, missing: [] });
        return;
      }
    }
    const partsDir = join(this.dir, deviceId, `${chunk.voicemailId}.parts`);
    await mkdir(partsDir, { recursive: true, mode: 0o700 });
    writeDurably(join(partsDir, String(chunk.index)), this.seal(Buffer.from(chunk.data, 'base64')));
    const have = new Set((await readdir(partsDir)).map(Number));
    const missing = Array.from({ length: chunk.count }, (_, i) => i).filter((i) => !have.has(i));
    if (missing.length > 0) {
      if (chunk.index === chunk.count - 1) {
        this.ack(deviceId, { state: 'missing', voicemailId: chunk.voicemailId, sha256: chunk.sha256, missing });
      }
      return;
    }
    const parts: Buffer[] = [];
    for (let i = 0; i < chunk.count; i++) parts.push(await this.readOpen(join(partsDir, String(i))));
    const whole = Buffer.concat(parts);
    const sha = createHash('sha256').update(whole).digest('hex');
    if (sha !== chunk.sha256 || whole.length !== chunk.totalBytes) {
      await rm(partsDir, { recursive: true, force: true });
      this.log.warn({ deviceId, voicemailId: chunk.voicemailId }, 'voicemail checksum mismatch; asking for it again');
      this.ack(deviceId, { state: 'checksum_mismatch', voicemailId: chunk.voicemailId, sha256: sha, missing: [] });
      return;
    }
    writeDurably(`${final}.tmp`, this.seal(whole));
    await rename(`${final}.tmp`, final);
    await rm(partsDir, { recursive: true, force: true });
    await this.onStored({ deviceId, voicemailId: chunk.voicemailId, path: final, bytes: whole.length, sha256: sha });
    this.log.info({ deviceId, voicemailId: chunk.voicemailId, bytes: whole.length }, 'voicemail stored and confirmed');
    this.ack(deviceId, { state: 'complete', voicemailId: chunk.voicemailId, sha256: sha, missing: [] });
  }

  private ack(deviceId: string, a: Omit<VoicemailAck, 'v'>): void {
    this.client.publish(deviceTopics(deviceId).voicemailAck, JSON.stringify({ v: 1, ...a }), { qos: 1 });
  }
}
