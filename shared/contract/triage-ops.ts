/**
 * Ops methods of voicemail triage (fleet/triage), part of the ops API
 * (OPS_METHODS in ./ops.ts): a voicemail's triage result, the list of
 * voicemails with theirs, and a clinic's urgent phrases. Triage is keyword
 * spotting and voice-stress cues, not transcription: no method returns a
 * transcript.
 */
import type { TSchema } from '@sinclair/typebox';
import { type Static, Strict, Type } from '../schema.js';
import type { MethodSpec } from './rpc.js';

type Role = 'viewer' | 'operator' | 'admin';
interface TriageOpsSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: Role;
  /** What a clinic user may do with it (ClinicScope in ops.ts; none: clinic users are refused). */
  clinic?: 'clinicId';
}
function op<P extends TSchema, R extends TSchema>(spec: TriageOpsSpec<P, R>): TriageOpsSpec<P, R> {
  return spec;
}

const UrgentPhraseSchema = Strict({
  phrase: Type.String({
    minLength: 2,
    maxLength: 60,
    pattern: "^[a-z']+( [a-z']+){0,3}$",
    description: "one to four lower-case words (letters and ' only), each in the recogniser's dictionary",
  }),
  threshold: Type.Number({
    minimum: 1e-80,
    maximum: 1,
    description:
      'detection threshold, 1e-80..1: smaller finds more (and more false alarms); two-word phrases need about 1e-30',
  }),
});
export type UrgentPhrase = Static<typeof UrgentPhraseSchema>;

export const UrgentPhraseListSchema = Type.Array(UrgentPhraseSchema, {
  minItems: 1,
  maxItems: 50,
  description: "a clinic's urgent phrases",
});

const Any = Type.Unknown();
const ClinicId = Type.String({ minLength: 1, maxLength: 64, description: 'clinic id' });
const VoicemailId = Type.String({ minLength: 1, maxLength: 64, description: 'voicemail id' });
const EXAMPLE_TRIAGE = {
  voicemailId: '0193b2a4-5d00-7b32-9a11-7c2e3f4a5b6c',
  state: 'done',
  urgent: true,
  phrases: [{ phrase: 'chest pain', startS: 2.05, endS: 2.58, score: 0.79 }],
  stressScore: 0.2,
  reasons: ['"chest pain" spotted at 2.1 s (score 0.79)'],
};

export const TRIAGE_OPS_METHODS = {
  'voicemail.triage': op({
    role: 'viewer',
    description:
      "a voicemail's triage: urgent or routine (or unavailable), the urgent phrases spotted with their times and scores, the stress score and its reasons, model, duration, triage time (keyword spotting, not a transcript)",
    params: Strict({ voicemailId: VoicemailId }),
    result: Any,
    example: { params: { voicemailId: EXAMPLE_TRIAGE.voicemailId }, result: EXAMPLE_TRIAGE },
  }),
  'triage.list': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: 'stored voicemails with their triage, newest first',
    params: Strict({
      clinicId: Type.Optional(ClinicId),
      box: Type.Optional(Type.String({ minLength: 3, maxLength: 64, description: 'serial or device id' })),
      attention: Type.Optional(Type.Boolean({ description: 'only those needing attention (urgent or not triaged)' })),
      before: Type.Optional(VoicemailId),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'at most (default 100)' })),
    }),
    result: Type.Array(Any),
    example: { params: { attention: true }, result: [EXAMPLE_TRIAGE] },
  }),
  'triage.phrases.get': op({
    role: 'viewer',
    clinic: 'clinicId',
    description: "a clinic's urgent phrases (its own, or the defaults)",
    params: Strict({ clinicId: ClinicId }),
    result: Any,
    example: {
      params: { clinicId: 'c1' },
      result: { clinicId: 'c1', own: false, phrases: [{ phrase: 'chest pain', threshold: 1e-30 }] },
    },
  }),
  'triage.phrases.set': op({
    role: 'admin',
    description:
      "replace a clinic's urgent phrases (validated whole: every word must be in the recogniser's dictionary), or reset them to the defaults",
    params: Strict({
      clinicId: ClinicId,
      phrases: Type.Optional(UrgentPhraseListSchema),
      reset: Type.Optional(Type.Boolean({ description: 'true: back to the default list (no phrases given)' })),
    }),
    result: Any,
    example: {
      params: { clinicId: 'c1', phrases: [{ phrase: 'chest pain', threshold: 1e-30 }] },
      result: { clinicId: 'c1', own: true, phrases: [{ phrase: 'chest pain', threshold: 1e-30 }] },
    },
  }),
} as const;

export type TriageOpsMethod = keyof typeof TRIAGE_OPS_METHODS;
