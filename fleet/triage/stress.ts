/**
 * Voice-stress cues from the audio: pitch (pitchy, McLeod pitch method) and
 * loudness (RMS) of the voiced parts of a message, compared with a
 * baseline: the same caller's earlier messages when there are some, or else
 * the message's own first seconds of speech. A raised voice, a higher
 * pitch and a wider pitch range than the baseline raise the score (0..1);
 * each cue that counts gives a reason. These are cues, not a diagnosis: a
 * caller who is always loud, a bad line or a different phone moves them too.
 */
import { PitchDetector } from 'pitchy';

/** Summary of the voiced frames of a stretch of audio. */
export interface VoiceStats {
  /** Median pitch of voiced frames (Hz). */
  pitchHz: number;
  /** Spread of the pitch: interquartile range in semitones. */
  pitchSpreadSt: number;
  /** Median level of speech frames (dBFS). */
  levelDb: number;
  /** Seconds of voiced audio behind the figures. */
  voicedS: number;
}

export interface StressResult {
  score: number;
  reasons: string[];
  /** What it was compared with. */
  baseline: 'caller' | 'own-start' | 'none';
  /** The whole message's figures (kept to be the caller's baseline next time). */
  stats: VoiceStats | null;
}

export interface StressOptions {
  /** Seconds of speech at the start that make the baseline when the caller has no earlier messages. */
  baselineS: number;
}

const FRAME = 1024;
const HOP = 512;
/** Less voiced audio than this says nothing. */
const MIN_VOICED_S = 0.5;

interface Frame {
  t: number;
  db: number;
  pitch: number | null;
}

/** 16-bit little-endian PCM -> floats in -1..1. */
export function pcmToFloat(pcm: Buffer): Float32Array {
  const n = Math.floor(pcm.length / 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = pcm.readInt16LE(i * 2) / 32768;
  return out;
}

function frames(samples: Float32Array, rate: number): Frame[] {
  const detector = PitchDetector.forFloat32Array(FRAME);
  const out: Frame[] = [];
  for (let at = 0; at + FRAME <= samples.length; at += HOP) {
    const f = samples.subarray(at, at + FRAME);
    let sum = 0;
    for (const v of f) sum += v * v;
    const db = 10 * Math.log10(sum / FRAME + 1e-12);
    const [pitch, clarity] = detector.findPitch(f, rate);
    out.push({ t: at / rate, db, pitch: clarity >= 0.8 && pitch >= 60 && pitch <= 500 ? pitch : null });
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return (sorted[lo] ?? 0) + ((sorted[hi] ?? 0) - (sorted[lo] ?? 0)) * (i - lo);
}

/**
 * Speech frames: above -55 dBFS, and 10 dB above the noise floor (the quietest 20 % of frames) or within 20 dB of
 * the loud frames (the loudest 10 %), whichever is lower: a message talked from end to end has no quiet fifth.
 */
function speech(all: Frame[]): Frame[] {
  const levels = all.map((f) => f.db).sort((a, b) => a - b);
  const cut = Math.max(-55, Math.min(quantile(levels, 0.2) + 10, quantile(levels, 0.9) - 20));
  return all.filter((f) => f.db > cut);
}

function stats(fs: Frame[], rate: number): VoiceStats | null {
  const voiced = fs.filter((f) => f.pitch !== null);
  const voicedS = (voiced.length * HOP) / rate;
  if (voicedS < MIN_VOICED_S) return null;
  const pitches = voiced.map((f) => f.pitch as number).sort((a, b) => a - b);
  const levels = fs.map((f) => f.db).sort((a, b) => a - b);
  return {
    pitchHz: quantile(pitches, 0.5),
    pitchSpreadSt: 12 * Math.log2(quantile(pitches, 0.75) / quantile(pitches, 0.25)),
    levelDb: quantile(levels, 0.5),
    voicedS,
  };
}

/** The figures of a whole recording (16 kHz floats), or null when it holds too little voiced audio. */
export function voiceStats(samples: Float32Array, rate: number): VoiceStats | null {
  return stats(speech(frames(samples, rate)), rate);
}

/** The mean of earlier messages' figures (weighted by their voiced seconds). */
function meanStats(list: VoiceStats[]): VoiceStats | null {
  const total = list.reduce((s, v) => s + v.voicedS, 0);
  if (list.length === 0 || total <= 0) return null;
  const avg = (k: keyof VoiceStats) => list.reduce((s, v) => s + v[k] * v.voicedS, 0) / total;
  return { pitchHz: avg('pitchHz'), pitchSpreadSt: avg('pitchSpreadSt'), levelDb: avg('levelDb'), voicedS: total };
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const round1 = (x: number) => Math.round(x * 10) / 10;

/** Score a stretch against a baseline: cues and reasons. */
function compare(now: VoiceStats, base: VoiceStats, against: string): { score: number; reasons: string[] } {
  const pitchUp = 12 * Math.log2(now.pitchHz / base.pitchHz);
  const louder = now.levelDb - base.levelDb;
  const wider = now.pitchSpreadSt - base.pitchSpreadSt;
  const cues = {
    pitch: clamp01((pitchUp - 1) / 4),
    level: clamp01((louder - 2) / 8),
    spread: clamp01((wider - 1) / 4),
  };
  const score = clamp01(0.45 * cues.pitch + 0.35 * cues.level + 0.2 * cues.spread);
  const reasons: string[] = [];
  if (cues.pitch > 0) reasons.push(`pitch ${round1(pitchUp)} semitones above ${against}`);
  if (cues.level > 0) reasons.push(`voice ${round1(louder)} dB louder than ${against}`);
  if (cues.spread > 0) reasons.push(`pitch range ${round1(wider)} semitones wider than ${against}`);
  return { score: Math.round(score * 100) / 100, reasons };
}

/**
 * Stress cues of a message (16 kHz floats): against the caller's earlier messages (`history`) when there are
 * some, else the rest of the message against its first `baselineS` seconds of speech.
 */
export function stressOf(samples: Float32Array, rate: number, history: VoiceStats[], o: StressOptions): StressResult {
  const sp = speech(frames(samples, rate));
  const whole = stats(sp, rate);
  if (!whole) return { score: 0, reasons: ['too little voiced audio to judge stress'], baseline: 'none', stats: null };
  const earlier = meanStats(history);
  if (earlier) {
    const n = history.length;
    const r = compare(whole, earlier, `the caller's ${n} earlier message${n === 1 ? '' : 's'}`);
    return { ...r, baseline: 'caller', stats: whole };
  }
  const start = sp[0]?.t ?? 0;
  const head = stats(
    sp.filter((f) => f.t < start + o.baselineS),
    rate,
  );
  const rest = stats(
    sp.filter((f) => f.t >= start + o.baselineS),
    rate,
  );
  if (!head || !rest) {
    return { score: 0, reasons: ['message too short to compare with its own start'], baseline: 'none', stats: whole };
  }
  return { ...compare(rest, head, `the message's first ${o.baselineS} s`), baseline: 'own-start', stats: whole };
}
