/**
 * The modem's own text-to-speech end to end on a pty: the driver speaks with
 * the vendor's command (Quectel AT+QTTS, SIMCom AT+CTTS after AT+CDTAM=1),
 * waits for the done URC, stops playback when the caller hangs up or when the
 * URC never comes, and says clearly when the modem has no TTS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { type Rig, rig } from './modem-helpers.js';

let r: Rig | undefined;
afterEach(async () => {
  await r?.stop();
  r = undefined;
});

describe('modem text-to-speech', () => {
  it('EC25: AT+QTTS=2,"text", done on +QTTS: 0', async () => {
    r = await rig('ec25');
    r.emu.ttsMsPerChar = 5;
    expect(r.modem.canSpeak).toBe(true);
    expect(await r.modem.speak('Please leave a message.', { timeoutMs: 5000 })).toBe('done');
    expect(r.emu.spoken).toEqual([{ text: 'Please leave a message.', command: 'AT+QTTS', remote: true }]);
    expect(r.emu.commands).toContain('AT+QTTS=2,"Please leave a message."');
  });

  it('SIM7600: the play path is set to the caller once, then AT+CTTS; an abort stops playback', async () => {
    r = await rig('sim7600');
    r.emu.ttsMsPerChar = 1000; // a long greeting
    const ac = new AbortController();
    const speaking = r.modem.speak('Closed.', { timeoutMs: 30_000, signal: ac.signal });
    await r.emu.waitUntil(() => r?.emu.spoken.length === 1);
    ac.abort();
    expect(await speaking).toBe('stopped');
    expect(r.emu.commands.filter((c) => /CDTAM|CTTS/.test(c))).toEqual([
      'AT+CDTAM=1',
      'AT+CTTS=2,"Closed."',
      'AT+CTTS=0',
    ]);
    expect(r.emu.spoken[0]?.remote).toBe(true);
  });

  it('no done URC within the limit: ModemTimeout naming the URC, and playback is stopped', async () => {
    r = await rig('sim800');
    r.emu.prepend({ name: 'tts that never finishes', onCommand: (c) => (/^AT\+CTTS=2/.test(c) ? {} : undefined) });
    const e = await r.modem.speak('Hello', { timeoutMs: 300 }).catch((x: unknown) => x);
    expect(isCallboxError(e, ErrorCode.ModemTimeout)).toBe(true);
    expect((e as Error).message).toContain('+CTTS:');
    await r.emu.waitUntil(() => r?.emu.commands.includes('AT+CTTS=0') ?? false);
  });

  it('a modem without TTS says so; text the modem cannot take is refused before it is sent', async () => {
    r = await rig('generic');
    expect(r.modem.canSpeak).toBe(false);
    const e = await r.modem.speak('Hello', { timeoutMs: 1000 }).catch((x: unknown) => x);
    expect(isCallboxError(e, ErrorCode.ModemUnsupported)).toBe(true);
    expect((e as Error).message).toContain('wav greeting');
    await r.stop();
    r = await rig('ec25');
    const bad = await r.modem.speak('say "hi"', { timeoutMs: 1000 }).catch((x: unknown) => x);
    expect(isCallboxError(bad, ErrorCode.ValidationFailed)).toBe(true);
    expect(r.emu.commands.some((c) => c.startsWith('AT+QTTS'))).toBe(false);
  });
});
