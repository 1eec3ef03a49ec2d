import { describe, expect, it } from 'vitest';
import { stressOf, voiceStats } from './stress.js';

const RATE = 16_000;

/** A voiced sound: a harmonic tone at `hz` (with a little vibrato) and `amp`, for `s` seconds. */
function voice(hz: number, amp: number, s: number): Float32Array {
  const out = new Float32Array(Math.round(s * RATE));
  let phase = 0;
  for (let i = 0; i < out.length; i++) {
    const f = hz * (1 + 0.02 * Math.sin((2 * Math.PI * 4 * i) / RATE));
    phase += (2 * Math.PI * f) / RATE;
    out[i] = amp * (0.6 * Math.sin(phase) + 0.3 * Math.sin(2 * phase) + 0.1 * Math.sin(3 * phase));
  }
  return out;
}

function join(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const silence = (s: number) => new Float32Array(Math.round(s * RATE));

describe('voice-stress cues', () => {
  it('a calm message against its own start scores 0', () => {
    const r = stressOf(join(silence(0.5), voice(120, 0.2, 6), silence(0.5)), RATE, [], { baselineS: 3 });
    expect(r.baseline).toBe('own-start');
    expect(r.score).toBe(0);
    expect(r.stats?.pitchHz).toBeGreaterThan(110);
    expect(r.stats?.pitchHz).toBeLessThan(130);
  });

  it('higher and louder than the start raises the score, with reasons', () => {
    const r = stressOf(join(silence(0.5), voice(120, 0.05, 3), voice(170, 0.3, 3), silence(0.5)), RATE, [], {
      baselineS: 3,
    });
    expect(r.score).toBeGreaterThan(0.5);
    expect(r.reasons.join('; ')).toMatch(/pitch \d+(\.\d)? semitones above the message's first 3 s/);
    expect(r.reasons.join('; ')).toMatch(/dB louder than the message's first 3 s/);
  });

  it("compares with the caller's earlier messages when there are some; too little voice says nothing", () => {
    const calm = voiceStats(voice(120, 0.05, 4), RATE);
    expect(calm).not.toBeNull();
    const r = stressOf(join(silence(0.5), voice(170, 0.3, 4)), RATE, [calm!, calm!], { baselineS: 3 });
    expect(r.baseline).toBe('caller');
    expect(r.reasons[0]).toMatch(/above the caller's 2 earlier messages/);
    expect(stressOf(silence(5), RATE, [], { baselineS: 3 })).toMatchObject({ score: 0, baseline: 'none' });
  });
});
