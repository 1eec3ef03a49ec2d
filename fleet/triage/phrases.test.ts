import { describe, expect, it } from 'vitest';
import { DEFAULT_PHRASES, validatePhrases } from './phrases.js';
import { DEFAULT_SPOTTER, kwsFile, parseDetections } from './spotter.js';

const DICT = DEFAULT_SPOTTER.dictPath;

describe('urgent phrase lists', () => {
  it('the defaults are valid, every word in the recogniser dictionary', () => {
    expect(
      validatePhrases(
        DEFAULT_PHRASES.map((p) => ({ ...p })),
        DICT,
      ),
    ).toHaveLength(DEFAULT_PHRASES.length);
  });

  it('bad input names the field, the value and what is accepted', () => {
    expect(() => validatePhrases([{ phrase: 'Chest Pain!', threshold: 1e-30 }], DICT, '/phrases')).toThrow(
      /\/phrases\/0\/phrase.*Chest Pain!/,
    );
    expect(() => validatePhrases([{ phrase: 'chest pain', threshold: 5 }], DICT, '/phrases')).toThrow(
      /\/phrases\/0\/threshold/,
    );
    expect(() => validatePhrases([{ phrase: 'chest pain' }], DICT)).toThrow(/\/0\/threshold/);
    expect(() => validatePhrases([], DICT)).toThrow(/urgent phrases are invalid/);
    expect(() =>
      validatePhrases(
        [
          { phrase: 'stroke', threshold: 1e-20 },
          { phrase: 'stroke', threshold: 1e-30 },
        ],
        DICT,
      ),
    ).toThrow(/\/1\/phrase "stroke" is listed twice/);
    expect(() => validatePhrases([{ phrase: 'xyzzyq pain', threshold: 1e-30 }], DICT, '/phrases')).toThrow(
      /\/phrases\/0\/phrase "xyzzyq pain": "xyzzyq" not in the recogniser's dictionary/,
    );
  });

  it('writes the -kws file and reads detections back (the hypothesis line is not a detection)', () => {
    const list = [
      { phrase: 'chest pain', threshold: 1e-30 },
      { phrase: 'bleeding', threshold: 1e-20 },
    ];
    expect(kwsFile(list)).toBe('chest pain /1e-30/\nbleeding /1e-20/\n');
    const out = 'chest pain bleeding\nbleeding  4.120 4.600 0.81\nchest pain 2.050 2.580 0.785270\nother 1.0 2.0 0.5\n';
    expect(parseDetections(out, list)).toEqual([
      { phrase: 'chest pain', startS: 2.05, endS: 2.58, score: 0.78527 },
      { phrase: 'bleeding', startS: 4.12, endS: 4.6, score: 0.81 },
    ]);
  });
});
