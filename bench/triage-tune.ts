/**
 * Threshold tuning for the urgent phrases, on the tuning half of the
 * labelled set only: the tuning messages are joined into one recording (1 s
 * of silence between them) and spotted once per threshold of a grid, every
 * phrase at that threshold; each detection is given back to its message by
 * time. For each phrase, the threshold kept is the one with the best
 * (messages of that phrase found) - 0.5 x (routine messages where it fired), the
 * stricter one on a tie. A false alarm counts half a found message: a missed
 * emergency costs more than a call back that was not needed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UrgentPhrase } from '../fleet/triage/phrases.js';
import { SAMPLE_RATE, type SpotterConfig, spotPhrases, toPcm16k, withWorkDir } from '../fleet/triage/spotter.js';
import type { Message } from '../scripts/lib/speech-set.js';

export const GRID = [1, 1e-2, 1e-5, 1e-10, 1e-15, 1e-20, 1e-30] as const;

export interface PhraseTuning {
  phrase: string;
  threshold: number;
  /** Messages of this phrase found / messages of this phrase. */
  found: number;
  of: number;
  /** Routine messages where it fired. */
  falseAlarms: number;
}

export async function tuneThresholds(
  messages: Message[],
  phrases: readonly string[],
  cfg: SpotterConfig,
  log: (s: string) => void,
): Promise<PhraseTuning[]> {
  return withWorkDir(async (dir) => {
    const parts: Buffer[] = [];
    const spans: { m: Message; from: number; to: number }[] = [];
    const gap = Buffer.alloc(SAMPLE_RATE * 2);
    let at = 0;
    for (const [i, m] of messages.entries()) {
      const pcm = await toPcm16k(m.file, join(dir, `m${i}.raw`), cfg);
      spans.push({ m, from: at, to: at + pcm.length / 2 / SAMPLE_RATE });
      parts.push(pcm, gap);
      at += (pcm.length + gap.length) / 2 / SAMPLE_RATE;
    }
    const joined = join(dir, 'joined.raw');
    await writeFile(joined, Buffer.concat(parts));
    log(`tuning on ${messages.length} messages (${(at / 60).toFixed(1)} min of audio), ${GRID.length} thresholds`);
    // hits[g][phrase] = set of message ids where the phrase fired at threshold GRID[g]
    const hits: Map<string, Set<string>>[] = [];
    for (const g of GRID) {
      const list: UrgentPhrase[] = phrases.map((phrase) => ({ phrase, threshold: g }));
      const found = await spotPhrases(joined, list, { ...cfg, timeoutMs: 600_000 }, dir);
      const byPhrase = new Map<string, Set<string>>();
      for (const d of found) {
        const mid = (d.startS + d.endS) / 2;
        const span = spans.find((s) => mid >= s.from && mid <= s.to);
        if (!span) continue;
        const set = byPhrase.get(d.phrase) ?? new Set<string>();
        set.add(span.m.id);
        byPhrase.set(d.phrase, set);
      }
      hits.push(byPhrase);
      log(`  threshold ${g.toExponential()}: ${found.length} detections`);
    }
    return phrases.map((phrase) => {
      const own = messages.filter((m) => m.phrase === phrase);
      const routine = new Set(messages.filter((m) => !m.urgent).map((m) => m.id));
      let best: PhraseTuning | undefined;
      let bestValue = Number.NEGATIVE_INFINITY;
      GRID.forEach((g, i) => {
        const fired = hits[i]?.get(phrase) ?? new Set<string>();
        const found = own.filter((m) => fired.has(m.id)).length;
        const falseAlarms = [...fired].filter((id) => routine.has(id)).length;
        // A missed emergency costs more than a false alarm: a false alarm counts half.
        const value = found - 0.5 * falseAlarms;
        // GRID runs from strict to loose: keep the first (strictest) of equal value.
        if (value > bestValue) {
          bestValue = value;
          best = { phrase, threshold: g, found, of: own.length, falseAlarms };
        }
      });
      return best as PhraseTuning;
    });
  });
}
