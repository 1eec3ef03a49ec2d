import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import { wavOf } from '../voicemail/vault.js';
import { playWav } from './aplay.js';

const dir = mkdtempSync(join(tmpdir(), 'callbox-aplay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

describe('WAV greetings through aplay, supervised', () => {
  const pcm = Buffer.alloc(3200);
  for (let i = 0; i < pcm.length; i += 2) pcm.writeInt16LE(Math.round(6000 * Math.sin(i / 7)), i);
  const wav = join(dir, 'greeting.wav');
  writeFileSync(wav, wavOf(pcm, 8000));

  it('plays the file into an ALSA device defined in an asoundrc (a file PCM records what was played)', async () => {
    const out = join(dir, 'played.raw');
    const conf = join(dir, 'asound.conf');
    writeFileSync(
      conf,
      `</usr/share/alsa/alsa.conf>\npcm.modemout {\n type file\n slave.pcm "null"\n file "${out}"\n format "raw"\n}\n`,
    );
    const r = await playWav({
      file: wav,
      device: 'modemout',
      timeoutMs: 5000,
      env: { ...process.env, ALSA_CONFIG_PATH: conf },
    });
    expect(r).toBe('done');
    expect(readFileSync(out).subarray(0, pcm.length).equals(pcm)).toBe(true);
  });

  it('says to install alsa-utils when aplay is missing', async () => {
    const e = await failure(playWav({ file: wav, device: 'x', timeoutMs: 1000, aplay: join(dir, 'no-such-aplay') }));
    expect(isCallboxError(e, ErrorCode.AudioUnavailable)).toBe(true);
    expect(e.message).toContain('alsa-utils');
  });

  it('names the file when it cannot be read', async () => {
    const e = await failure(playWav({ file: join(dir, 'missing.wav'), device: 'x', timeoutMs: 1000 }));
    expect(e.message).toContain('missing.wav');
    expect(e.message).toContain('ENOENT');
  });

  it('reports a failed exit status with the end of its stderr', async () => {
    const bad = script('bad-aplay', 'echo "aplay: main:831: audio open error: No such file or directory" >&2\nexit 1');
    const e = await failure(playWav({ file: wav, device: 'modem', timeoutMs: 1000, aplay: bad }));
    expect(e.message).toContain('exit status 1');
    expect(e.message).toContain('audio open error');
  });

  it('kills a player that hangs past its time limit', async () => {
    const hung = script('hung-aplay', 'exec sleep 30');
    const t0 = Date.now();
    const e = await failure(playWav({ file: wav, device: 'modem', timeoutMs: 200, aplay: hung }));
    expect(e.message).toContain('longer than 200 ms');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('stops at once when the caller hangs up (the signal aborts)', async () => {
    const hung = script('slow-aplay', 'exec sleep 30');
    const ac = new AbortController();
    const p = playWav({ file: wav, device: 'modem', timeoutMs: 10_000, aplay: hung, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(await p).toBe('stopped');
  });
});
