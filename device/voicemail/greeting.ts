/**
 * The greeting a caller hears after the box answered for voicemail and
 * before recording starts, chosen by situation (calls/hours.ts
 * greetingSituation: after hours, lunch, all staff busy) from
 * settings.voicemail.greeting:
 *   tts   the modem speaks the text (Modem.speak: AT+CTTS / AT+QTTS); a
 *         modem without TTS plays nothing (logged once per call)
 *   wav   the file is played into the modem's audio path (audio/aplay.ts)
 *   none  nothing
 * A greeting never stops a voicemail: a failure is logged and reported in
 * the outcome, and recording starts anyway. Aborting the signal (the caller
 * hung up) stops playback at once.
 */
import { describeError } from '../../shared/errors.js';
import { getLogger } from '../../shared/log.js';
import type { GreetingSituation } from '../calls/hours.js';

/** The longest a greeting may play before recording starts (the bound of audio.greetingMaxS). */
export const GREETING_MAX_MS = 60_000;

export interface GreetingSetting {
  mode: 'tts' | 'wav' | 'none';
  text: string;
  file: string | null;
}

export interface GreetingOutcome {
  situation: GreetingSituation;
  mode: GreetingSetting['mode'];
  /** played: to the end; stopped: the caller hung up; skipped: nothing to play; failed: see reason. */
  result: 'played' | 'stopped' | 'skipped' | 'failed';
  reason?: string;
}

export interface GreetingPlayers {
  /** The modem's TTS, or null when the modem has none. */
  speak: ((text: string, o: { timeoutMs: number; signal: AbortSignal }) => Promise<'done' | 'stopped'>) | null;
  playWav: (file: string, o: { timeoutMs: number; signal: AbortSignal }) => Promise<'done' | 'stopped'>;
}

const log = getLogger('device:voicemail:greeting');

export async function playGreeting(
  situation: GreetingSituation,
  g: GreetingSetting,
  players: GreetingPlayers,
  o: { timeoutMs: number; signal: AbortSignal },
): Promise<GreetingOutcome> {
  const base = { situation, mode: g.mode };
  if (g.mode === 'none') return { ...base, result: 'skipped' };
  if (o.signal.aborted) return { ...base, result: 'stopped' };
  try {
    let r: 'done' | 'stopped';
    if (g.mode === 'tts') {
      if (!players.speak) {
        log.warn({ situation }, 'tts greeting set, but the modem has no text-to-speech: no greeting');
        return { ...base, result: 'skipped', reason: 'the modem has no text-to-speech' };
      }
      if (g.text.trim() === '') return { ...base, result: 'skipped', reason: 'no greeting text' };
      r = await players.speak(g.text, o);
    } else {
      if (!g.file) return { ...base, result: 'skipped', reason: 'no greeting file' };
      r = await players.playWav(g.file, o);
    }
    return { ...base, result: r === 'done' ? 'played' : 'stopped' };
  } catch (e) {
    const reason = describeError(e);
    log.error({ situation, mode: g.mode, err: reason }, 'greeting failed; recording without it');
    return { ...base, result: 'failed', reason };
  }
}

/** A settings check: problems with the greetings, each naming the field, the value and what is accepted. */
export function greetingProblems(greetings: Record<GreetingSituation, GreetingSetting>): string[] {
  const out: string[] = [];
  for (const [situation, g] of Object.entries(greetings)) {
    if (g.mode === 'wav' && !g.file) {
      out.push(`voicemail.greeting.${situation}.file: got null, expected the path of a WAV file on the box (mode wav)`);
    }
    if (g.mode === 'tts' && g.text.trim() === '') {
      out.push(`voicemail.greeting.${situation}.text: got "", expected the words to speak (mode tts)`);
    }
  }
  return out;
}
