import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isCallboxError } from '../../shared/errors.js';
import { loadAlsaCapture } from './alsa.js';

describe('the optional alsa-capture binding', () => {
  it('says which package to install and how to rebuild when the binding is missing', () => {
    let err: unknown;
    try {
      loadAlsaCapture(() => {
        throw new Error("Cannot find module './build/Release/capture'");
      });
    } catch (e) {
      err = e;
    }
    expect(isCallboxError(err, ErrorCode.AudioUnavailable)).toBe(true);
    expect((err as Error).message).toContain('libasound2-dev');
    expect((err as Error).message).toContain('npm rebuild alsa-capture');
    expect((err as Error).message).toContain('Cannot find module');
  });

  it('records from an ALSA file PCM defined in an asoundrc through the real binding', async () => {
    const AlsaCapture = loadAlsaCapture();
    const dir = mkdtempSync(join(tmpdir(), 'callbox-alsa-'));
    const input = Buffer.alloc(16_000);
    for (let i = 0; i < input.length; i += 2) input.writeInt16LE(Math.round(8000 * Math.sin(i / 20)), i);
    writeFileSync(join(dir, 'in.raw'), input);
    // The file plugin reads capture data from `infile`; the null slave needs no sound card.
    const conf = `</usr/share/alsa/alsa.conf>\npcm.vmtest {\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "${join(dir, 'in.raw')}"\n format "raw"\n}\n`;
    writeFileSync(join(dir, 'asound.conf'), conf);
    process.env.ALSA_CONFIG_PATH = join(dir, 'asound.conf');
    const chunks: Buffer[] = [];
    const capture = new AlsaCapture({ channels: 1, device: 'vmtest', format: 'S16_LE', rate: 8000, periodSize: 400 });
    await new Promise<void>((resolve, reject) => {
      capture.on('error', (e) => reject(e instanceof Error ? e : new Error(String(e))));
      capture.on('audio', (d) => {
        chunks.push(Buffer.from(d));
        if (Buffer.concat(chunks).length >= input.length) {
          capture.close();
          resolve();
        }
      });
    });
    delete process.env.ALSA_CONFIG_PATH;
    expect(Buffer.concat(chunks).subarray(0, input.length).equals(input)).toBe(true);
  });
});
