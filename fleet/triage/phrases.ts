/**
 * Urgent phrases: what the keyword spotter listens for in a clinic's
 * voicemail. A phrase is one to four dictionary words (lower case, letters
 * and apostrophes) with a detection threshold: pocketsphinx reports a phrase
 * when p(phrase) / p(alternatives) is above it, so a smaller threshold finds
 * more (and more false alarms). Longer phrases need smaller thresholds.
 *
 * The defaults are medical emergencies; their thresholds were tuned on the
 * tuning half of the synthetic labelled set (bench/triage.ts, docs/TRIAGE.md)
 * and are figures for synthetic speech, not for real callers.
 */
import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { type UrgentPhrase, UrgentPhraseListSchema } from '../../shared/contract/triage-ops.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { formatProblems, problemsOf } from '../../shared/validate.js';

export type { UrgentPhrase } from '../../shared/contract/triage-ops.js';

/**
 * The default list (medical emergencies), with the thresholds `npm run bench:triage` chose on the tuning half of
 * the synthetic labelled set (with triage.phoneLoopProbability 1e-10; docs/TRIAGE.md has the figures). Figures for
 * synthetic speech: re-tune on real (consented) messages before relying on them.
 */
export const DEFAULT_PHRASES: readonly UrgentPhrase[] = [
  { phrase: 'chest pain', threshold: 1e-20 },
  { phrase: "can't breathe", threshold: 1e-10 },
  { phrase: 'cannot breathe', threshold: 1 },
  { phrase: 'bleeding', threshold: 1 },
  { phrase: 'overdose', threshold: 1 },
  { phrase: 'unconscious', threshold: 1 },
  { phrase: 'suicide', threshold: 1 },
  { phrase: 'stroke', threshold: 1e-2 },
  { phrase: 'seizure', threshold: 1 },
  { phrase: 'allergic reaction', threshold: 1 },
  { phrase: 'emergency', threshold: 1 },
  { phrase: 'heart attack', threshold: 1 },
];

let dictionary: { path: string; words: Set<string> } | undefined;

/** The words of a CMU-style pronunciation dictionary ("word(2)" variants folded), cached per path. */
export function dictionaryWords(path: string): Set<string> {
  if (dictionary?.path === path) return dictionary.words;
  const words = new Set<string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const w = line.split(' ', 1)[0];
    if (w) words.add(w.replace(/\(\d+\)$/, ''));
  }
  dictionary = { path, words };
  return words;
}

/**
 * Validate a phrase list; a CallboxError naming the field (`phrases/2/phrase`), the value and what is accepted
 * otherwise. With `dictPath` readable, every word must be in the dictionary (pocketsphinx refuses the whole list
 * for one unknown word).
 */
export function validatePhrases(input: unknown, dictPath?: string, field = ''): UrgentPhrase[] {
  const problems = problemsOf(UrgentPhraseListSchema, input).map((p) => ({ ...p, path: `${field}${p.path}` }));
  if (problems.length > 0) {
    throw new CallboxError(ErrorCode.ValidationFailed, `urgent phrases are invalid: ${formatProblems(problems)}`, {
      problems,
    });
  }
  const list = Value.Clone(input) as UrgentPhrase[];
  const seen = new Set<string>();
  list.forEach((p, i) => {
    if (seen.has(p.phrase)) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `urgent phrases are invalid: ${field}/${i}/phrase "${p.phrase}" is listed twice (each phrase once)`,
      );
    }
    seen.add(p.phrase);
  });
  let words: Set<string> | undefined;
  try {
    words = dictPath ? dictionaryWords(dictPath) : undefined;
  } catch {
    words = undefined; // no dictionary here: checked when the spotter runs (the voicemail is then "unavailable")
  }
  if (words) {
    list.forEach((p, i) => {
      const unknown = p.phrase.split(' ').filter((w) => !words.has(w));
      if (unknown.length > 0) {
        throw new CallboxError(
          ErrorCode.ValidationFailed,
          `urgent phrases are invalid: ${field}/${i}/phrase "${p.phrase}": ${unknown.map((w) => `"${w}"`).join(', ')} not in the recogniser's dictionary ${dictPath} (use words it knows, e.g. "cannot" for "can not")`,
        );
      }
    });
  }
  return list;
}
