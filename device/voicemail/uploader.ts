/**
 * Uploads stored voicemails to the fleet: chunked, checksummed, resumable.
 *
 * The box publishes every chunk of a recording (QoS 1) on voicemail/chunk;
 * the fleet answers on voicemail/ack: "complete" with the SHA-256 it
 * verified, "missing" with the chunk indexes it still lacks (only those are
 * sent again), or "checksum_mismatch" (all are sent again). The local copy is
 * deleted only after a "complete" whose checksum equals ours. No answer
 * within ackTimeoutMs: the whole recording is offered again later (the fleet
 * keeps chunks it has, so nothing is stored twice).
 */
import type { MqttClient } from 'mqtt';
import { type VoicemailAck, VoicemailAckSchema, type VoicemailChunk } from '../../shared/contract/messages.js';
import type { DeviceTopics } from '../../shared/contract/topics.js';
import { getLogger } from '../../shared/log.js';
import { decodePayload } from '../../shared/validate.js';
import type { VoicemailMeta, VoicemailVault } from './vault.js';

/** Raw bytes per chunk: 36 KiB encodes to 48 KiB of base64, under the 64 KiB schema limit. */
export const CHUNK_BYTES = 36 * 1024;

export interface UploaderOptions {
  client: MqttClient;
  topics: DeviceTopics;
  vault: VoicemailVault;
  ackTimeoutMs?: number;
  /** Tries per recording per pass before moving on (the next pass retries). */
  maxRounds?: number;
}

export class VoicemailUploader {
  private readonly log = getLogger('device:voicemail');
  private readonly waiters = new Map<string, (ack: VoicemailAck) => void>();
  private running: Promise<void> | undefined;
  private again = false;
  private readonly onMessage = (topic: string, payload: Buffer) => {
    if (topic !== this.opts.topics.voicemailAck) return;
    try {
      const ack = decodePayload(VoicemailAckSchema, payload, 'voicemail ack');
      this.waiters.get(ack.voicemailId)?.(ack);
    } catch (err) {
      this.log.warn({ err }, 'malformed voicemail ack ignored');
    }
  };

  constructor(private readonly opts: UploaderOptions) {}

  async start(): Promise<void> {
    this.opts.client.on('message', this.onMessage);
    await this.opts.client.subscribeAsync(this.opts.topics.voicemailAck, { qos: 1 });
  }

  stop(): void {
    this.opts.client.off('message', this.onMessage);
  }

  /** Upload everything pending; concurrent calls coalesce into one more pass. */
  kick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Number of recordings still on the box (for telemetry). */
  async pendingCount(): Promise<number> {
    return (await this.opts.vault.pending()).length;
  }

  private async pass(): Promise<void> {
    for (const meta of await this.opts.vault.pending()) {
      if (!this.opts.client.connected) return;
      try {
        await this.upload(meta);
      } catch (err) {
        this.log.warn({ err, voicemailId: meta.voicemailId }, 'voicemail upload will be retried');
      }
    }
  }

  private async upload(meta: VoicemailMeta): Promise<boolean> {
    const wav = await this.opts.vault.get(meta.voicemailId);
    const count = Math.max(1, Math.ceil(wav.length / CHUNK_BYTES));
    let toSend = Array.from({ length: count }, (_, i) => i);
    for (let round = 0; round < (this.opts.maxRounds ?? 5); round++) {
      const ack = this.waitForAck(meta.voicemailId);
      for (const index of toSend) {
        const chunk: VoicemailChunk = {
          v: 1,
          voicemailId: meta.voicemailId,
          index,
          count,
          totalBytes: wav.length,
          sha256: meta.sha256,
          data: wav.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES).toString('base64'),
        };
        await this.opts.client.publishAsync(this.opts.topics.voicemailChunk, JSON.stringify(chunk), { qos: 1 });
      }
      const answer = await ack;
      if (!answer) {
        toSend = Array.from({ length: count }, (_, i) => i);
        continue;
      }
      if (answer.state === 'complete' && answer.sha256 === meta.sha256) {
        await this.opts.vault.remove(meta.voicemailId);
        this.log.info({ voicemailId: meta.voicemailId }, 'voicemail confirmed by the fleet; local copy deleted');
        return true;
      }
      if (answer.state === 'missing' && answer.missing.length > 0) {
        toSend = answer.missing.filter((i) => i < count);
      } else {
        this.log.warn(
          { voicemailId: meta.voicemailId, state: answer.state },
          'fleet did not confirm the checksum; resending',
        );
        toSend = Array.from({ length: count }, (_, i) => i);
      }
    }
    return false;
  }

  private waitForAck(voicemailId: string): Promise<VoicemailAck | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(voicemailId);
        resolve(undefined);
      }, this.opts.ackTimeoutMs ?? 30_000);
      this.waiters.set(voicemailId, (ack) => {
        // A "missing" answer is final for this round only when it follows the last chunk.
        clearTimeout(timer);
        this.waiters.delete(voicemailId);
        resolve(ack);
      });
    });
  }
}
