/**
 * Triage of one recording: keyword spotting for the clinic's urgent phrases
 * (spotter.ts) and voice-stress cues (stress.ts). Urgent when a listed phrase
 * is spotted, or when the stress score reaches `stressUrgentScore`. The same
 * function serves the fleet's triage queue and bench/triage.ts.
 */
import { join } from 'node:path';
import type { UrgentPhrase } from './phrases.js';
import {
  type Detection,
  modelName,
  SAMPLE_RATE,
  type SpotterConfig,
  spotPhrases,
  toPcm16k,
  withWorkDir,
} from './spotter.js';
import { pcmToFloat, type StressResult, stressOf, type VoiceStats } from './stress.js';

export interface TriageOptions {
  spotter: SpotterConfig;
  /** Seconds of speech at the start that make the stress baseline when the caller has no earlier messages. */
  baselineS: number;
  /** A stress score at or above this makes a message urgent on its own (above 1: never). */
  stressUrgentScore: number;
  /** Where the job's temporary files go (0700; default: the system's temporary folder). */
  workDir?: string;
}

export interface TriageOutcome {
  urgent: boolean;
  phrases: Detection[];
  stress: Omit<StressResult, 'stats'>;
  /** Why it is urgent or routine, for people. */
  reasons: string[];
  model: string;
  durationMs: number;
  /** How long the triage took. */
  triageMs: number;
  /** The message's voice figures (the caller's baseline next time), or null. */
  stats: VoiceStats | null;
}

/** Triage a recording (WAV bytes, or a path sox reads). Throws AudioUnavailable when a tool or the model is missing. */
export async function triageRecording(
  audio: Buffer | string,
  phrases: readonly UrgentPhrase[],
  history: VoiceStats[],
  o: TriageOptions,
): Promise<TriageOutcome> {
  const started = performance.now();
  return withWorkDir(async (dir) => {
    const raw = join(dir, 'audio.raw');
    const pcm = await toPcm16k(audio, raw, o.spotter);
    const samples = pcmToFloat(pcm);
    const found = await spotPhrases(raw, phrases, o.spotter, dir);
    const { stats, ...stress } = stressOf(samples, SAMPLE_RATE, history, { baselineS: o.baselineS });
    const byStress = stress.score >= o.stressUrgentScore;
    const reasons = [
      ...found.map((d) => `"${d.phrase}" spotted at ${d.startS.toFixed(1)} s (score ${d.score.toFixed(2)})`),
      ...(byStress ? [`stress score ${stress.score} reaches ${o.stressUrgentScore}`] : []),
      ...stress.reasons,
    ];
    if (found.length === 0 && !byStress) reasons.unshift('no urgent phrase spotted');
    return {
      urgent: found.length > 0 || byStress,
      phrases: found,
      stress,
      reasons,
      model: modelName(o.spotter),
      durationMs: Math.round((samples.length / SAMPLE_RATE) * 1000),
      triageMs: Math.round(performance.now() - started),
      stats,
    };
  }, o.workDir);
}
