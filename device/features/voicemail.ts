/**
 * Voicemail as a box feature: the encrypted vault under <dataDir>/voicemail,
 * the greeting (voicemail/greeting.ts: the modem's TTS or a WAV through
 * aplay, per situation, from settings.voicemail.greeting) and the tone after
 * it (AT+VTS, settings.voicemail.toneAfterGreeting), the recorder on
 * alsa-capture (when the module loads; otherwise the clear AudioUnavailable
 * error is logged once and calls answered for voicemail are not recorded),
 * which ends on hang-up, at voicemail.maxLengthS or after
 * voicemail.silenceEndS of trailing silence (then the box hangs up), and the
 * uploader over the box's device MQTT session: started on every connect (a
 * new session gets a new uploader) and kicked then and after each recording.
 *
 * Unheard voicemails (voicemail/unheard.ts, in the box's store) light the
 * voicemail LED (onUnheard, used by the io feature) until the fleet's
 * 'voicemail.heard' command clears the last one. Telemetry reports the
 * recordings pending upload and the unheard ones. result(callId) tells the
 * calls feature, when a voicemail call ends, whether its message was kept
 * (call outcome voicemail or voicemail_failed; abandoned when the caller hung
 * up during the greeting). Events for tests and the scenario: 'greeting'
 * (callId + GreetingOutcome) and 'recorded' (VoicemailMeta).
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { background } from '../../shared/background.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import { type AlsaCaptureCtor, loadAlsaCapture } from '../audio/alsa.js';
import { playWav } from '../audio/aplay.js';
import type { Box, BoxModule, UplinkState } from '../box.js';
import type { CallsSnapshot, VoicemailCall, VoicemailResult } from '../calls/manager.js';
import type { Modem } from '../modem/types.js';
import { type GreetingOutcome, greetingProblems, playGreeting } from '../voicemail/greeting.js';
import { type Recording, VoicemailRecorder } from '../voicemail/recorder.js';
import { UnheardVoicemails, VOICEMAIL_MIGRATIONS } from '../voicemail/unheard.js';
import { VoicemailUploader } from '../voicemail/uploader.js';
import { type VoicemailMeta, VoicemailVault } from '../voicemail/vault.js';

const log = getLogger('device:features:voicemail');

export interface VoicemailFeatureOptions {
  /** Loads the capture class (default: alsa-capture; throws AudioUnavailable when it is not built). */
  loadCapture?: () => AlsaCaptureCtor;
  /** How long the uploader waits for the fleet's answer to a recording. */
  ackTimeoutMs?: number;
  /** Environment of the aplay child (default the box's; tests point ALSA_CONFIG_PATH at their asound.conf). */
  playbackEnv?: NodeJS.ProcessEnv;
}

export interface VoicemailFeatureEvents {
  greeting: [outcome: GreetingOutcome & { callId: string }];
  recorded: [meta: VoicemailMeta];
}

/** A voicemail call in progress: its greeting, then its recording. */
interface LiveVoicemail {
  abort: AbortController;
  rec: Recording | null;
  done: Promise<VoicemailResult>;
}

export class VoicemailFeature extends EventEmitter<VoicemailFeatureEvents> implements BoxModule {
  readonly name = 'voicemail';
  readonly migrations = VOICEMAIL_MIGRATIONS;
  private vaultRef: VoicemailVault | undefined;
  private unheardRef: UnheardVoicemails | undefined;
  private recorder: VoicemailRecorder | null = null;
  private uploader: VoicemailUploader | undefined;
  private uploaderClient: MqttClient | undefined;
  private readonly live = new Map<string, LiveVoicemail>();
  /** How recordings ended, by call id, until the calls feature asks (result()). */
  private readonly results = new Map<string, VoicemailResult>();
  private readonly detach: (() => void)[] = [];
  private box: Box | undefined;
  private settings: DeviceSettings | undefined;
  private hangUp: (() => Promise<void>) | undefined;
  /** Why recording is off (the AudioUnavailable message), or null when it is on. */
  unavailable: string | null = null;
  private readonly onState = (s: UplinkState) => {
    if (s === 'online') background(this.connected(), log, 'starting voicemail upload');
  };

  constructor(
    private readonly opts: VoicemailFeatureOptions = {},
    /** The modem, for tts greetings (absent: tts greetings play nothing). */
    private readonly modem?: () => Modem | undefined,
  ) {
    super();
  }

  get vault(): VoicemailVault | undefined {
    return this.vaultRef;
  }

  /** Whether calls answered for voicemail are recorded. */
  get recording(): boolean {
    return this.recorder !== null;
  }

  /** Voicemails not heard yet (0 before start). */
  get unheard(): number {
    return this.unheardRef?.count ?? 0;
  }

  /** Follow the unheard count (the voicemail light): called now and on every change. Returns the removal. */
  onUnheard(fn: (count: number) => void): () => void {
    const listener = (n: number) => fn(n);
    this.unheardRef?.on('change', listener);
    fn(this.unheard);
    return () => this.unheardRef?.off('change', listener);
  }

  /** How the box ends a call whose recording ended by itself (maximum length, trailing silence). */
  attachHangUp(hangUp: () => Promise<void>): void {
    this.hangUp = hangUp;
  }

  async start(box: Box): Promise<void> {
    this.box = box;
    const vault = new VoicemailVault(join(box.config.box.dataDir, 'voicemail'));
    this.vaultRef = vault;
    const unheard = new UnheardVoicemails(box.store);
    await unheard.load();
    this.unheardRef = unheard;
    try {
      const capture = (this.opts.loadCapture ?? (() => loadAlsaCapture()))();
      this.recorder = new VoicemailRecorder({
        capture,
        device: box.config.audio.captureDevice,
        rate: box.config.audio.sampleRate,
        vault,
        sink: box.events,
        kept: (meta) => unheard.add(meta.voicemailId, meta.recordedAt),
      });
    } catch (e) {
      this.unavailable = describeError(e);
      log.error(`voicemail recording is off, the box runs without it: ${this.unavailable}`);
    }
    const offSettings = await box.onSettings({
      name: 'voicemail',
      check: (next) => {
        const problems = greetingProblems(next.voicemail.greeting);
        if (problems.length > 0) {
          throw new CallboxError(ErrorCode.ValidationFailed, `greetings are invalid: ${problems.join('; ')}`, {
            problems,
          });
        }
      },
      apply: (next) => {
        this.settings = next;
      },
    });
    this.detach.push(
      offSettings,
      box.handle('voicemail.heard', async (p) => {
        const r = await unheard.heard(p.voicemailId);
        log.info(
          { voicemailId: p.voicemailId, ...r },
          r.cleared ? 'voicemail heard' : 'voicemail heard (not unheard here)',
        );
        return r;
      }),
    );
    box.provideVoicemailsPending(async () => (await vault.pending()).length);
    box.provideVoicemailsUnheard(() => unheard.count);
    box.on('state', this.onState);
    if (box.state === 'online') background(this.connected(), log, 'starting voicemail upload');
  }

  async stop(): Promise<void> {
    this.box?.off('state', this.onState);
    for (const off of this.detach.splice(0)) off();
    for (const v of this.live.values()) this.end(v);
    await Promise.allSettled([...this.live.values()].map((v) => v.done));
    this.uploader?.stop();
    this.uploader = undefined;
    this.uploaderClient = undefined;
  }

  /** The calls module answered a call for voicemail: greet the caller, then record. */
  record(call: VoicemailCall): void {
    const recorder = this.recorder;
    if (!recorder) {
      log.warn({ callId: call.callId }, 'call answered for voicemail, but recording is off (no audio capture)');
      this.settle(call.callId, { stored: false, reason: `recording is off: ${this.unavailable ?? 'no recorder'}` });
      return;
    }
    const v: LiveVoicemail = { abort: new AbortController(), rec: null, done: Promise.resolve({ stored: true }) };
    v.done = this.greetThenRecord(call, recorder, v)
      .catch((e): VoicemailResult => {
        log.error({ callId: call.callId, err: describeError(e) }, 'voicemail recording failed');
        return { stored: false, reason: `recording failed: ${describeError(e)}` };
      })
      .then((r) => {
        this.settle(call.callId, r);
        return r;
      })
      .finally(() => this.live.delete(call.callId));
    this.live.set(call.callId, v);
  }

  private async greetThenRecord(
    call: VoicemailCall,
    recorder: VoicemailRecorder,
    v: LiveVoicemail,
  ): Promise<VoicemailResult> {
    const situation = call.situation ?? 'afterHours';
    const s = this.settings ?? this.box?.settings;
    if (s) {
      const outcome = await playGreeting(situation, s.voicemail.greeting[situation], this.players(), {
        timeoutMs: (this.box?.config.audio.greetingMaxS ?? 30) * 1000,
        signal: v.abort.signal,
      });
      log.info({ callId: call.callId, ...outcome }, 'greeting');
      this.emit('greeting', { callId: call.callId, ...outcome });
      if (outcome.result === 'played' && s.voicemail.toneAfterGreeting && !v.abort.signal.aborted)
        await this.tone(call);
    }
    if (v.abort.signal.aborted) {
      return { stored: false, abandoned: true, reason: 'the caller hung up during the greeting' };
    }
    const rec = recorder.record(
      { callId: call.callId, number: call.number },
      {
        maxMs: call.maxLengthMs,
        ...(s
          ? { silence: { thresholdDbfs: s.voicemail.silenceDbfs, endAfterMs: s.voicemail.silenceEndS * 1000 } }
          : {}),
      },
    );
    v.rec = rec;
    rec.ended
      .then((by) => {
        // The message is complete: end the call rather than keep the line open (the caller may not hang up).
        if (by !== 'hangup' && this.hangUp) {
          log.info({ callId: call.callId, endedBy: by }, 'recording ended; hanging up');
          background(this.hangUp(), log, 'hanging up after the recording');
        }
      })
      .catch(() => {}); // a failed capture is reported through rec.done
    const meta = await rec.done;
    log.info({ callId: call.callId, voicemailId: meta.voicemailId, durationMs: meta.durationMs }, 'voicemail kept');
    this.emit('recorded', meta);
    background(this.kick(), log, 'voicemail upload');
    return { stored: true };
  }

  /** The beep before recording; a modem that cannot send it is logged, the recording goes on. */
  private async tone(call: VoicemailCall): Promise<void> {
    const modem = this.modem?.();
    if (!modem?.tone) return;
    await modem
      .tone()
      .catch((e) => log.warn({ callId: call.callId, err: describeError(e) }, 'no tone after the greeting'));
  }

  private players() {
    const modem = this.modem?.();
    const audio = this.box?.config.audio;
    return {
      speak: modem?.canSpeak && modem.speak ? modem.speak.bind(modem) : null,
      playWav: (file: string, o: { timeoutMs: number; signal: AbortSignal }) =>
        playWav({
          file,
          device: audio?.playbackDevice ?? 'default',
          aplay: audio?.aplay ?? 'aplay',
          timeoutMs: o.timeoutMs,
          signal: o.signal,
          ...(this.opts.playbackEnv ? { env: this.opts.playbackEnv } : {}),
        }),
    };
  }

  /** The call is over: stop its greeting or its recording. */
  private end(v: LiveVoicemail): void {
    v.abort.abort();
    v.rec?.stop();
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
   * A voicemail call ended: stop its greeting or recording if it still runs and say whether the
   * message was kept. A call this feature never recorded (recording off, or the box restarted
   * during the call, which loses the audio in memory) was not.
   */
  async result(callId: string): Promise<VoicemailResult> {
    const v = this.live.get(callId);
    if (v) {
      this.end(v);
      const r = await v.done;
      this.results.delete(callId);
      return r;
    }
    const known = this.results.get(callId);
    this.results.delete(callId);
    return known ?? { stored: false, reason: 'no recording of this call (the box restarted during it)' };
  }

  /** Calls changed: a voicemail whose call is no longer in voicemail (the caller hung up) ends. */
  callsChanged(snapshot: CallsSnapshot): void {
    for (const [callId, v] of this.live) {
      if (!snapshot.calls.some((c) => c.callId === callId && c.phase === 'voicemail')) this.end(v);
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
