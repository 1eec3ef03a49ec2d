/**
 * The fleet's `triage:` section: urgency triage of every voicemail
 * (fleet/triage). Defaults in one place (TRIAGE_DEFAULTS) for the schema and
 * the bench.
 */
import { Millis, Section, type Static, Type } from '../../shared/schema.js';

export const TRIAGE_DEFAULTS = {
  enabled: true,
  concurrency: 1,
  timeoutMs: 60_000,
  soxPath: 'sox',
  pocketsphinxPath: 'pocketsphinx_continuous',
  hmmDir: '/usr/share/pocketsphinx/model/en-us/en-us',
  dictPath: '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict',
  baselineS: 3,
  stressUrgentScore: 0.85,
  historyMessages: 5,
  phoneLoopProbability: 1e-10,
} as const;

export const TriageConfigSchema = Section(
  {
    enabled: Type.Boolean({
      default: TRIAGE_DEFAULTS.enabled,
      description:
        'triage every stored voicemail (urgent phrases and stress cues); off: every voicemail waits unsorted',
    }),
    concurrency: Type.Integer({
      minimum: 1,
      maximum: 16,
      default: TRIAGE_DEFAULTS.concurrency,
      description: 'voicemails triaged at once (1 on a Pi-class fleet: each takes a CPU core for about a second)',
    }),
    timeoutMs: Millis('sox and pocketsphinx may each run this long on one voicemail before they are stopped', {
      default: TRIAGE_DEFAULTS.timeoutMs,
      minimum: 1000,
      maximum: 600_000,
    }),
    soxPath: Type.String({ default: TRIAGE_DEFAULTS.soxPath, minLength: 1, description: 'the sox program' }),
    pocketsphinxPath: Type.String({
      default: TRIAGE_DEFAULTS.pocketsphinxPath,
      minLength: 1,
      description: 'the pocketsphinx_continuous program (Debian package pocketsphinx)',
    }),
    hmmDir: Type.String({
      default: TRIAGE_DEFAULTS.hmmDir,
      minLength: 1,
      description: 'acoustic model folder (Debian package pocketsphinx-en-us)',
    }),
    dictPath: Type.String({
      default: TRIAGE_DEFAULTS.dictPath,
      minLength: 1,
      description: 'pronunciation dictionary; every word of an urgent phrase must be in it',
    }),
    phoneLoopProbability: Type.Number({
      minimum: 1e-80,
      maximum: 1,
      default: TRIAGE_DEFAULTS.phoneLoopProbability,
      description:
        "pocketsphinx -kws_plp: probability of the phone loop each phrase is weighed against (smaller: more detections); the phrases' thresholds were tuned with the default",
    }),
    baselineS: Type.Integer({
      minimum: 1,
      maximum: 30,
      default: TRIAGE_DEFAULTS.baselineS,
      description:
        "seconds of speech at a message's start that are its stress baseline when the caller left no earlier message",
    }),
    stressUrgentScore: Type.Number({
      minimum: 0,
      maximum: 2,
      default: TRIAGE_DEFAULTS.stressUrgentScore,
      description:
        'a stress score (0..1) at or above this makes a voicemail urgent without any urgent phrase (above 1: never)',
    }),
    historyMessages: Type.Integer({
      minimum: 0,
      maximum: 50,
      default: TRIAGE_DEFAULTS.historyMessages,
      description:
        "the caller's earlier messages (newest first) that make the stress baseline (0: only the message's own start)",
    }),
  },
  'urgency triage of voicemail at the fleet (keyword spotting and voice-stress cues)',
);
export type TriageConfig = Static<typeof TriageConfigSchema>;
