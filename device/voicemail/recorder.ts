/**
 * Records a voicemail from the ALSA capture device (alsa-capture) after the
 * box answered a call for voicemail: up to maxMs of 16-bit mono PCM, or until
 * stop() (the caller hung up). The recording is stored encrypted and durably
 * in the vault, then the 'voicemail.recorded' event is committed to the
 * outbox; the uploader takes it from there.
 */
import { newEventId } from '../../shared/ids.js';
import { getLogger } from '../../shared/log.js';
import type { AlsaCaptureCtor, AlsaCaptureInstance } from '../audio/alsa.js';
import type { EventSink } from '../events.js';
import { type VoicemailMeta, type VoicemailVault, wavOf } from './vault.js';

export interface RecorderOptions {
  capture: AlsaCaptureCtor;
  device: string;
  rate: number;
  vault: VoicemailVault;
  sink: EventSink;
  /** Set by the caller around the recording (e.g. to sleep the modem audio). */
  periodSize?: number;
}

export interface Recording {
  /** End the recording now (the caller hung up). */
  stop(): void;
  /** Resolves when the recording is stored and its event committed. */
  done: Promise<VoicemailMeta>;
}

export class VoicemailRecorder {
  private readonly log = getLogger('device:voicemail');
  constructor(private readonly opts: RecorderOptions) {}

  record(call: { callId: string; number: string | null }, maxMs: number): Recording {
    const { rate } = this.opts;
    const maxBytes = Math.floor((maxMs / 1000) * rate) * 2;
    const chunks: Buffer[] = [];
    let size = 0;
    let capture: AlsaCaptureInstance | undefined;
    let finish: () => void = () => undefined;
    const started = Date.now();
    const captured = new Promise<void>((resolve, reject) => {
      finish = () => {
        capture?.close();
        resolve();
      };
      try {
        capture = new this.opts.capture({
          channels: 1,
          device: this.opts.device,
          format: 'S16_LE',
          rate,
          periodSize: this.opts.periodSize ?? 160,
        });
      } catch (e) {
        reject(e);
        return;
      }
      capture.on('audio', (data) => {
        if (size >= maxBytes) return;
        const b = Buffer.from(data);
        const take = Math.min(b.length, maxBytes - size);
        chunks.push(take === b.length ? b : b.subarray(0, take));
        size += take;
        if (size >= maxBytes) finish();
      });
      capture.on('error', (e) => reject(e instanceof Error ? e : new Error(String(e))));
      capture.on('readError', (e) => this.log.warn({ err: String(e) }, 'ALSA read error during voicemail'));
    });
    const done = captured.then(async () => {
      const pcm = Buffer.concat(chunks, size);
      const meta = await this.opts.vault.put(
        {
          voicemailId: newEventId(),
          callId: call.callId,
          number: call.number,
          durationMs: Math.round((pcm.length / 2 / rate) * 1000),
          recordedAt: new Date(started).toISOString(),
        },
        wavOf(pcm, rate),
      );
      await this.opts.sink.record('voicemail.recorded', {
        voicemailId: meta.voicemailId,
        callId: meta.callId,
        number: meta.number,
        durationMs: meta.durationMs,
        bytes: meta.bytes,
        sha256: meta.sha256,
      });
      this.log.info({ voicemailId: meta.voicemailId, durationMs: meta.durationMs }, 'voicemail stored');
      return meta;
    });
    return { stop: () => finish(), done };
  }
}
