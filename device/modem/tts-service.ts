/**
 * The modem's own text-to-speech as a part of the driver (host.ts): speak()
 * sends the vendor's play command (at/tts.ts) and resolves when the done URC
 * (+CTTS: / +QTTS:) arrives; the waiter exists before the command goes out,
 * so a URC that races the OK is not missed. An abort (the caller hung up)
 * stops playback with the vendor's stop command and resolves 'stopped'; no
 * URC within timeoutMs rejects with ModemTimeout (the modem is not reset for
 * it: the greeting is skipped, the recording goes on).
 */
import { CallboxError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import { Priority } from './at/channel.js';
import { formatTtsPlay, formatTtsStop, ttsUrcPrefix } from './at/tts.js';
import { guard, Lock, type ModemHost } from './host.js';

export type SpeakResult = 'done' | 'stopped';

export interface SpeakOptions {
  /** Give up waiting for the done URC after this long (ms). */
  timeoutMs: number;
  /** Aborting stops playback (AT+CTTS=0 / AT+QTTS=0). */
  signal?: AbortSignal;
}

export class TtsService {
  private readonly lock = new Lock();
  private waiter: ((status: number) => void) | null = null;
  /** The profile's set-up commands were sent since the last initialisation. */
  private setUp = false;

  constructor(private readonly host: ModemHost) {}

  /** Whether the modem in use has text-to-speech (its vendor profile says so). */
  get available(): boolean {
    return this.host.profile().tts !== null;
  }

  /** The modem was (re)initialised: send the set-up again before the next greeting. */
  forget(): void {
    this.setUp = false;
  }

  /** A +CTTS:/+QTTS: URC. */
  onDone(status: number): void {
    const w = this.waiter;
    this.waiter = null;
    w?.(status);
  }

  speak(text: string, opts: SpeakOptions): Promise<SpeakResult> {
    return guard('speak', () => this.lock.run(() => this.play(text, opts)));
  }

  private async play(text: string, opts: SpeakOptions): Promise<SpeakResult> {
    const tts = this.host.profile().tts;
    if (!tts) {
      throw new CallboxError(
        ErrorCode.ModemUnsupported,
        `the modem (profile ${this.host.profile().name}) has no text-to-speech: use a wav greeting instead`,
      );
    }
    const command = formatTtsPlay(tts.command, text);
    if (opts.signal?.aborted) return 'stopped';
    if (!this.setUp) {
      for (const c of tts.setup) {
        // A firmware without the play-path command still speaks (to its default path): logged, not fatal.
        await this.host.cmd({ command: c }, Priority.CallControl).catch((e: unknown) => {
          if (!isCallboxError(e, ErrorCode.ModemCommandFailed)) throw e;
          this.host.log.warn({ command: c, err: String(e) }, 'text-to-speech set-up refused');
        });
      }
      this.setUp = true;
    }
    let timer: ReturnType<typeof setTimeout> | null = null;
    let onAbort: (() => void) | null = null;
    const finished = new Promise<SpeakResult>((resolve, reject) => {
      this.waiter = () => resolve('done');
      onAbort = () => resolve('stopped');
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(
        () =>
          reject(
            new CallboxError(
              ErrorCode.ModemTimeout,
              `no ${ttsUrcPrefix(tts.command)} done report within ${opts.timeoutMs} ms of ${tts.command}`,
              { command: tts.command },
            ),
          ),
        opts.timeoutMs,
      );
    });
    finished.catch(() => {}); // awaited below; never unhandled if the command fails first
    try {
      await this.host.cmd({ command, prefixes: [ttsUrcPrefix(tts.command)] }, Priority.CallControl);
      const r = await finished;
      if (r === 'stopped') await this.stop(tts.command);
      return r;
    } catch (e) {
      if (isCallboxError(e, ErrorCode.ModemTimeout)) await this.stop(tts.command);
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      this.waiter = null;
    }
  }

  /** Best effort: the call may be gone already, and then the modem stopped by itself. */
  private async stop(command: Parameters<typeof formatTtsStop>[0]): Promise<void> {
    try {
      await this.host.cmd({ command: formatTtsStop(command), prefixes: [ttsUrcPrefix(command)] }, Priority.CallControl);
    } catch (e) {
      this.host.log.debug({ err: String(e) }, 'stopping text-to-speech failed');
    }
  }
}
