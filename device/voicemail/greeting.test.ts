import { describe, expect, it } from 'vitest';
import { type GreetingPlayers, greetingProblems, playGreeting } from './greeting.js';

const TEXT = 'We are closed.';
const signal = () => new AbortController().signal;

function players(over: Partial<GreetingPlayers> = {}): GreetingPlayers & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    speak: async (text) => {
      calls.push(`speak:${text}`);
      return 'done';
    },
    playWav: async (file) => {
      calls.push(`wav:${file}`);
      return 'done';
    },
    ...over,
  };
}

describe('the greeting of a voicemail call', () => {
  it('speaks the text with the modem (tts) or plays the file (wav), or nothing (none)', async () => {
    const p = players();
    const o = { timeoutMs: 1000, signal: signal() };
    expect(await playGreeting('afterHours', { mode: 'tts', text: TEXT, file: null }, p, o)).toEqual({
      situation: 'afterHours',
      mode: 'tts',
      result: 'played',
    });
    expect(await playGreeting('lunch', { mode: 'wav', text: '', file: '/g/lunch.wav' }, p, o)).toMatchObject({
      result: 'played',
    });
    expect(await playGreeting('busy', { mode: 'none', text: TEXT, file: null }, p, o)).toMatchObject({
      result: 'skipped',
    });
    expect(p.calls).toEqual([`speak:${TEXT}`, 'wav:/g/lunch.wav']);
  });

  it('never stops the voicemail: no TTS on this modem, or a failing player, and recording goes on', async () => {
    const o = { timeoutMs: 1000, signal: signal() };
    expect(
      await playGreeting('afterHours', { mode: 'tts', text: TEXT, file: null }, players({ speak: null }), o),
    ).toMatchObject({ result: 'skipped', reason: 'the modem has no text-to-speech' });
    const broken = players({
      playWav: async () => {
        throw new Error('aplay: audio open error: Device or resource busy');
      },
    });
    expect(await playGreeting('lunch', { mode: 'wav', text: '', file: '/g/x.wav' }, broken, o)).toMatchObject({
      result: 'failed',
      reason: expect.stringContaining('Device or resource busy'),
    });
  });

  it('a caller who hung up before it started hears nothing; one who hangs up during it stops it', async () => {
    const ac = new AbortController();
    ac.abort();
    const p = players();
    expect(
      await playGreeting('afterHours', { mode: 'tts', text: TEXT, file: null }, p, {
        timeoutMs: 1000,
        signal: ac.signal,
      }),
    ).toMatchObject({ result: 'stopped' });
    expect(p.calls).toEqual([]);
    const stopped = players({ speak: async () => 'stopped' });
    expect(
      await playGreeting('afterHours', { mode: 'tts', text: TEXT, file: null }, stopped, {
        timeoutMs: 1000,
        signal: signal(),
      }),
    ).toMatchObject({ result: 'stopped' });
  });

  it('settings are refused when a wav greeting has no file or a tts greeting no words, naming the field', () => {
    const ok = { mode: 'none' as const, text: '', file: null };
    expect(
      greetingProblems({
        afterHours: { mode: 'wav', text: '', file: null },
        lunch: { mode: 'tts', text: '  ', file: null },
        busy: ok,
      }),
    ).toEqual([
      'voicemail.greeting.afterHours.file: got null, expected the path of a WAV file on the box (mode wav)',
      'voicemail.greeting.lunch.text: got "", expected the words to speak (mode tts)',
    ]);
    expect(greetingProblems({ afterHours: ok, lunch: ok, busy: ok })).toEqual([]);
  });
});
