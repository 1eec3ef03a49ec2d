/**
 * Records a voicemail from the ALSA capture device (alsa-capture) after the
 * box answered a call for voicemail: 16-bit mono PCM until stop() (the caller
 * hung up: endedBy 'hangup'), maxMs of audio ('max'), or trailing silence
 * measured on the PCM as it arrives (silence.ts: 'silence'). A message with
 * no frame above the silence threshold is kept but marked empty. The
 * recording is stored encrypted and durably in the vault, `kept` runs (the
 * voicemail light's unheard list), then the 'voicemail.recorded' event is
 * committed to the outbox; the uploader takes it from there.
 */
import { newEventId } from '../../shared/ids.js';
import { getLogger } from '../../shared/log.js';
import type { AlsaCaptureCtor, AlsaCaptureInstance } from '../audio/alsa.js';
import type { EventSink } from '../events.js';
import { SilenceDetector, type SilenceOptions } from './silence.js';
import { type VoicemailMeta, type VoicemailVault, wavOf } from './vault.js';

export type EndedBy = 'hangup' | 'max' | 'silence';

export interface RecorderOptions {
  capture: AlsaCaptureCtor;
  device: string;
  rate: number;
  vault: VoicemailVault;
  sink: EventSink;
  /** Frames per ALSA period (default 160: 20 ms at 8 kHz). */
  periodSize?: number;
  /** Runs once the recording is in the vault, before its event is committed (a failure fails the recording). */
  kept?: (meta: VoicemailMeta) => Promise<void> | void;
}

export interface RecordLimits {
  maxMs: number;
  /** Trailing-silence end; absent or endAfterMs 0: only hang-up and maxMs end the recording. */
  silence?: Omit<SilenceOptions, 'rate'>;
}

export interface Recording {
  /** End the recording now (the caller hung up). */
  stop(): void;
  /** Resolves when the recording is stored and its event committed. */
  done: Promise<VoicemailMeta>;
  /** Resolves when capture stopped (before the recording is stored), with why: the call can be hung up then. */
  ended: Promise<EndedBy>;
}

export class VoicemailRecorder {
  private readonly log = getLogger('device:voicemail');
  constructor(private readonly opts: RecorderOptions) {}

  record(call: { callId: string; number: string | null }, limits: number | RecordLimits): Recording {
    const { rate } = this.opts;
    const { maxMs, silence } = typeof limits === 'number' ? { maxMs: limits, silence: undefined } : limits;
    const maxBytes = Math.floor((maxMs / 1000) * rate) * 2;
    const detector = new SilenceDetector({
      rate,
      thresholdDbfs: silence?.thresholdDbfs ?? -45,
      endAfterMs: silence?.endAfterMs ?? 0,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let capture: AlsaCaptureInstance | undefined;
    let finish: (by: EndedBy) => void = () => undefined;
    const started = Date.now();
    const captured = new Promise<EndedBy>((resolve, reject) => {
      let closed = false;
      finish = (by) => {
        if (closed) return;
        closed = true;
        capture?.close();
        resolve(by);
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
        if (closed || size >= maxBytes) return;
        const b = Buffer.from(data);
        const take = Math.min(b.length, maxBytes - size);
        const part = take === b.length ? b : b.subarray(0, take);
        chunks.push(part);
        size += take;
        if (detector.push(part)) finish('silence');
        else if (size >= maxBytes) finish('max');
      });
      capture.on('error', (e) => reject(e instanceof Error ? e : new Error(String(e))));
      capture.on('readError', (e) => this.log.warn({ err: String(e) }, 'ALSA read error during voicemail'));
    });
    const done = captured.then(async (endedBy) => {
      const pcm = Buffer.concat(chunks, size);
      const empty = !detector.voiced;
      const meta = await this.opts.vault.put(
        {
          voicemailId: newEventId(),
          callId: call.callId,
          number: call.number,
          durationMs: Math.round((pcm.length / 2 / rate) * 1000),
          recordedAt: new Date(started).toISOString(),
          endedBy,
          empty,
        },
        wavOf(pcm, rate),
      );
      await this.opts.kept?.(meta);
      await this.opts.sink.record('voicemail.recorded', {
        voicemailId: meta.voicemailId,
        callId: meta.callId,
        number: meta.number,
        durationMs: meta.durationMs,
        bytes: meta.bytes,
        sha256: meta.sha256,
        endedBy,
        empty,
      });
      this.log.info({ voicemailId: meta.voicemailId, durationMs: meta.durationMs, endedBy, empty }, 'voicemail stored');
      return meta;
    });
    return { stop: () => finish('hangup'), done, ended: captured };
  }
}
