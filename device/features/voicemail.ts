/**
 * Voicemail as a box feature: the encrypted vault under <dataDir>/voicemail,
 * the recorder on alsa-capture (when the module loads; otherwise the clear
 * AudioUnavailable error is logged once and calls answered for voicemail
 * are not recorded), and the uploader over the box's device MQTT session:
 * started on every connect (a new session gets a new uploader) and kicked
 * then and after each recording. Telemetry reports the recordings pending.
 * result(callId) tells the calls feature, when a voicemail call ends,
 * whether its message was kept (call outcome voicemail or voicemail_failed).
 */
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { background } from '../../shared/background.js';
import { describeError } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import { type AlsaCaptureCtor, loadAlsaCapture } from '../audio/alsa.js';
import type { Box, BoxModule, UplinkState } from '../box.js';
import type { CallsSnapshot, VoicemailCall, VoicemailResult } from '../calls/manager.js';
import { type Recording, VoicemailRecorder } from '../voicemail/recorder.js';
import { VoicemailUploader } from '../voicemail/uploader.js';
import { VoicemailVault } from '../voicemail/vault.js';

const log = getLogger('device:features:voicemail');

export interface VoicemailFeatureOptions {
  /** Loads the capture class (default: alsa-capture; throws AudioUnavailable when it is not built). */
  loadCapture?: () => AlsaCaptureCtor;
  /** How long the uploader waits for the fleet's answer to a recording. */
  ackTimeoutMs?: number;
}

export class VoicemailFeature implements BoxModule {
  readonly name = 'voicemail';
  private vaultRef: VoicemailVault | undefined;
  private recorder: VoicemailRecorder | null = null;
  private uploader: VoicemailUploader | undefined;
  private uploaderClient: MqttClient | undefined;
  private readonly recordings = new Map<string, Recording>();
  /** How recordings ended, by call id, until the calls feature asks (result()). */
  private readonly results = new Map<string, VoicemailResult>();
  private box: Box | undefined;
  /** Why recording is off (the AudioUnavailable message), or null when it is on. */
  unavailable: string | null = null;
  private readonly onState = (s: UplinkState) => {
    if (s === 'online') background(this.connected(), log, 'starting voicemail upload');
  };

  constructor(private readonly opts: VoicemailFeatureOptions = {}) {}

  get vault(): VoicemailVault | undefined {
    return this.vaultRef;
  }

  /** Whether calls answered for voicemail are recorded. */
  get recording(): boolean {
    return this.recorder !== null;
  }

  async start(box: Box): Promise<void> {
    this.box = box;
    const vault = new VoicemailVault(join(box.config.box.dataDir, 'voicemail'));
    this.vaultRef = vault;
    try {
      const capture = (this.opts.loadCapture ?? (() => loadAlsaCapture()))();
      this.recorder = new VoicemailRecorder({
        capture,
        device: box.config.audio.captureDevice,
        rate: box.config.audio.sampleRate,
        vault,
        sink: box.events,
      });
    } catch (e) {
      this.unavailable = describeError(e);
      log.error(`voicemail recording is off, the box runs without it: ${this.unavailable}`);
    }
    box.provideVoicemailsPending(async () => (await vault.pending()).length);
    box.on('state', this.onState);
    if (box.state === 'online') background(this.connected(), log, 'starting voicemail upload');
  }

  async stop(): Promise<void> {
    this.box?.off('state', this.onState);
    for (const r of this.recordings.values()) r.stop();
    await Promise.allSettled([...this.recordings.values()].map((r) => r.done));
    this.uploader?.stop();
    this.uploader = undefined;
    this.uploaderClient = undefined;
  }

  /** The calls module answered a call for voicemail: record it. */
  record(call: VoicemailCall): void {
    if (!this.recorder) {
      log.warn({ callId: call.callId }, 'call answered for voicemail, but recording is off (no audio capture)');
      this.settle(call.callId, { stored: false, reason: `recording is off: ${this.unavailable ?? 'no recorder'}` });
      return;
    }
    const rec = this.recorder.record({ callId: call.callId, number: call.number }, call.maxLengthMs);
    this.recordings.set(call.callId, rec);
    rec.done
      .then((meta) => {
        log.info({ callId: call.callId, voicemailId: meta.voicemailId, durationMs: meta.durationMs }, 'voicemail kept');
        this.settle(call.callId, { stored: true });
        background(this.kick(), log, 'voicemail upload');
      })
      .catch((e) => {
        log.error({ callId: call.callId, err: describeError(e) }, 'voicemail recording failed');
        this.settle(call.callId, { stored: false, reason: `recording failed: ${describeError(e)}` });
      })
      .finally(() => this.recordings.delete(call.callId));
  }

  private settle(callId: string, r: VoicemailResult): void {
    this.results.set(callId, r);
    // Results nobody asked for (calls handled without this feature's result()) must not pile up.
    while (this.results.size > 100) {
      const first = this.results.keys().next().value;
      if (first === undefined) break;
      this.results.delete(first);
    }
  }

  /**
   * A voicemail call ended: stop its recording if it still runs and say whether the message was
   * kept. A call this feature never recorded (recording off, or the box restarted during the call,
   * which loses the audio in memory) was not.
   */
  async result(callId: string): Promise<VoicemailResult> {
    const rec = this.recordings.get(callId);
    const known = this.results.get(callId);
    this.results.delete(callId);
    if (rec) {
      rec.stop();
      try {
        await rec.done;
        return { stored: true };
      } catch (e) {
        return { stored: false, reason: `recording failed: ${describeError(e)}` };
      }
    }
    return known ?? { stored: false, reason: 'no recording of this call (the box restarted during it)' };
  }

  /** Calls changed: a recording whose call is no longer in voicemail (the caller hung up) ends. */
  callsChanged(snapshot: CallsSnapshot): void {
    for (const [callId, rec] of this.recordings) {
      if (!snapshot.calls.some((c) => c.callId === callId && c.phase === 'voicemail')) rec.stop();
    }
  }

  /** Upload what is pending now (when connected). */
  async kick(): Promise<void> {
    if (!this.uploader || !this.uploaderClient?.connected) return;
    await this.uploader.kick().catch((e) => log.warn({ err: describeError(e) }, 'voicemail upload pass failed'));
  }

  private async connected(): Promise<void> {
    const session = this.box?.session;
    const vault = this.vaultRef;
    if (!session || !vault) return;
    if (this.uploaderClient !== session.client) {
      this.uploader?.stop();
      const uploader = new VoicemailUploader({
        client: session.client,
        topics: session.topics,
        vault,
        ...(this.opts.ackTimeoutMs ? { ackTimeoutMs: this.opts.ackTimeoutMs } : {}),
      });
      this.uploader = uploader;
      this.uploaderClient = session.client;
      try {
        await uploader.start();
      } catch (e) {
        log.warn({ err: describeError(e) }, 'voicemail acknowledgements not subscribed; retried at the next connect');
        this.uploaderClient = undefined;
        return;
      }
    }
    await this.kick();
  }
}
