import { describe, expect, it } from 'vitest';
import { rmsDbfs, SilenceDetector } from './silence.js';

const RATE = 8000;

/** 16-bit mono PCM: a sine of `amplitude` (0..32767) for `ms`. */
function tone(ms: number, amplitude: number, hz = 440): Buffer {
  const n = Math.round((RATE * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / RATE)), i * 2);
  return b;
}

describe('trailing silence on the PCM', () => {
  it('measures RMS in dBFS: a full-scale sine is about -3 dBFS, digital silence is -inf', () => {
    expect(rmsDbfs(tone(100, 32767))).toBeCloseTo(-3.01, 1);
    expect(rmsDbfs(tone(100, 327))).toBeCloseTo(-43.0, 0);
    expect(rmsDbfs(Buffer.alloc(320))).toBe(Number.NEGATIVE_INFINITY);
  });

  it('ends after endAfterMs of frames below the threshold once the caller stopped talking', () => {
    const d = new SilenceDetector({ rate: RATE, thresholdDbfs: -45, endAfterMs: 4000 });
    expect(d.push(tone(1000, 8000))).toBe(false);
    expect(d.voiced).toBe(true);
    // quiet line noise below -45 dBFS (amplitude 50 is about -59 dBFS) counts as silence
    expect(d.push(tone(3900, 50))).toBe(false);
    expect(d.trailingSilenceMs).toBe(3900);
    expect(d.push(tone(100, 50))).toBe(true);
  });

  it('starts counting again when the caller speaks again', () => {
    const d = new SilenceDetector({ rate: RATE, thresholdDbfs: -45, endAfterMs: 1000 });
    d.push(Buffer.alloc(1600 * 5 - 2)); // 980 ms of silence, minus a byte pair
    expect(d.ended).toBe(false);
    d.push(tone(40, 8000));
    expect(d.trailingSilenceMs).toBeLessThan(40);
    expect(d.push(Buffer.alloc(17_000))).toBe(true); // the odd bytes left over still held some of the tone
  });

  it('takes chunks of any size, odd byte counts too', () => {
    const d = new SilenceDetector({ rate: RATE, thresholdDbfs: -45, endAfterMs: 500 });
    const pcm = Buffer.concat([tone(200, 8000), Buffer.alloc(8000)]);
    let ended = false;
    for (let i = 0; i < pcm.length && !ended; i += 37) ended = d.push(pcm.subarray(i, i + 37));
    expect(ended).toBe(true);
    expect(d.voiced).toBe(true);
  });

  it('a message of silence only is not voiced (kept but marked empty); 0 never ends', () => {
    const d = new SilenceDetector({ rate: RATE, thresholdDbfs: -45, endAfterMs: 0 });
    expect(d.push(Buffer.alloc(160_000))).toBe(false);
    expect(d.voiced).toBe(false);
    expect(d.trailingSilenceMs).toBe(10_000);
  });
});
