/**
 * The fleet-wide section of "who is calling" and follow-up (`patients:` in
 * fleet.yaml): how the FHIR lookup behaves (timeout, cache, concurrency),
 * the repeat-concern rules and how long the call log is kept. Each clinic's
 * FHIR server and token are per clinic, over the ops API
 * (patients.settings.set), not here.
 */
import { Hours, Millis, Seconds, Section, type Static, Type } from '../../shared/schema.js';

export const PatientsConfigSchema = Section(
  {
    enabled: Type.Boolean({
      default: true,
      description: 'keep the call log and call-back list, and look callers up in clinics that set a FHIR server',
    }),
    fhirTimeoutMs: Millis('give up on a FHIR search after this long (the call is never held up by it)', {
      default: 2000,
      minimum: 100,
      maximum: 30_000,
    }),
    fhirConcurrency: Type.Integer({
      default: 4,
      minimum: 1,
      maximum: 64,
      description: 'FHIR searches in flight at once, over all clinics (more wait in line)',
    }),
    fhirQueueMax: Type.Integer({
      default: 500,
      minimum: 1,
      maximum: 100_000,
      description: 'searches waiting for a slot above which new ones are skipped (recorded as "skipped")',
    }),
    cacheTtlS: Seconds('a FHIR answer (found, none, several) is reused for the same clinic and number this long', {
      default: 300,
      minimum: 0,
      maximum: 86_400,
    }),
    cacheMax: Type.Integer({ default: 1000, minimum: 0, maximum: 100_000, description: 'answers kept in the cache' }),
    lookupMaxAgeH: Hours('calls older than this when the fleet gets them (a box that was offline) are not looked up', {
      default: 24,
      minimum: 1,
      maximum: 720,
    }),
    repeatCalls: Type.Integer({
      default: 3,
      minimum: 2,
      maximum: 50,
      description: 'this many calls from one number within repeatCallsWindowH flag the last as a repeat concern',
    }),
    repeatCallsWindowH: Hours('window of repeatCalls', { default: 168, minimum: 1, maximum: 720 }),
    repeatAfterVoicemailH: Hours('a call within this time after a voicemail from the same number is flagged', {
      default: 72,
      minimum: 1,
      maximum: 720,
    }),
    lastContacts: Type.Integer({
      default: 5,
      minimum: 0,
      maximum: 50,
      description: 'earlier contacts (calls, voicemails, SMS) shown with a call',
    }),
    pollS: Seconds('also read new events this often (besides at once when one is stored)', {
      default: 5,
      minimum: 1,
      maximum: 300,
    }),
  },
  'who is calling (FHIR lookup), the call log, the call-back list and survey figures',
);

export type PatientsConfig = Static<typeof PatientsConfigSchema>;
