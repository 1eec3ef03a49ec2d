import { describe, expect, it } from 'vitest';
import { checkFhirBase, displayName, readPatientBundle } from './fhir.js';
import { type EarlierContact, repeatReason } from './repeat.js';

const CFG = { repeatCalls: 3, repeatCallsWindowH: 168, repeatAfterVoicemailH: 72 };
const H = 3_600_000;
const T = Date.parse('2026-11-26T10:00:00.000Z');
const at = (hoursBefore: number) => new Date(T - hoursBefore * H).toISOString();
const c = (kind: EarlierContact['kind'], hoursBefore: number): EarlierContact => ({ kind, at: at(hoursBefore) });

describe('repeat concerns', () => {
  it('flags the third call within a week, not the second, not calls older than the window', () => {
    expect(repeatReason(at(0), [c('call', 48)], CFG)).toBeNull();
    expect(repeatReason(at(0), [c('call', 48), c('call', 167)], CFG)).toBe('3 calls from this number within 168 h');
    expect(repeatReason(at(0), [c('call', 48), c('call', 169)], CFG)).toBeNull();
    // SMS are contacts, not calls.
    expect(repeatReason(at(0), [c('call', 1), c('sms', 2)], CFG)).toBeNull();
  });
  it('flags a call after a voicemail within the window, with how long after', () => {
    expect(repeatReason(at(0), [c('voicemail', 0.5)], CFG)).toBe('called again 30 min after leaving a voicemail');
    expect(repeatReason(at(0), [c('voicemail', 71)], CFG)).toBe('called again 71 h after leaving a voicemail');
    expect(repeatReason(at(0), [c('voicemail', 73)], CFG)).toBeNull();
    expect(repeatReason(at(0), [c('call', 1), c('call', 2), c('voicemail', 3)], CFG)).toBe(
      '3 calls from this number within 168 h; called again 3 h after leaving a voicemail',
    );
  });
});

describe('reading the FHIR answer', () => {
  const patient = (id: string, extra: object = {}) => ({
    resource: { resourceType: 'Patient', id, name: [{ family: 'Doe', given: ['Jo'] }], ...extra },
    search: { mode: 'match' },
  });
  it('one patient: the official name, else the first; birthDate as given', () => {
    expect(
      readPatientBundle({
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [
          patient('a', {
            name: [
              { use: 'old', family: 'Murray', given: ['Grace'] },
              { use: 'official', family: 'Hopper', given: ['Grace'] },
            ],
            birthDate: '1976-12-09',
          }),
        ],
      }),
    ).toEqual({ kind: 'found', patient: { name: 'Grace Hopper', birthDate: '1976-12-09' } });
    expect(displayName([{ text: 'Dr Jo Doe' }, { use: 'official', family: 'X' }])).toBe('X');
    expect(displayName([{ given: ['Jo'], family: 'Doe' }])).toBe('Jo Doe');
    expect(displayName(undefined)).toBeNull();
    expect(readPatientBundle({ resourceType: 'Bundle', entry: [patient('a', { birthDate: 'soon' })] })).toEqual({
      kind: 'found',
      patient: { name: 'Jo Doe', birthDate: null },
    });
  });
  it('none, several (none picked), included resources ignored, not a Bundle refused', () => {
    expect(readPatientBundle({ resourceType: 'Bundle', type: 'searchset', total: 0 })).toEqual({ kind: 'none' });
    expect(readPatientBundle({ resourceType: 'Bundle', entry: [patient('a'), patient('b')] })).toEqual({
      kind: 'several',
      count: 2,
    });
    expect(
      readPatientBundle({
        resourceType: 'Bundle',
        entry: [patient('a'), { resource: { resourceType: 'Organization' }, search: { mode: 'include' } }],
      }).kind,
    ).toBe('found');
    expect(() => readPatientBundle({ resourceType: 'OperationOutcome' })).toThrow(/other than a Bundle/);
  });
  it('a base URL: https, or http to loopback only; no credentials or query', () => {
    expect(checkFhirBase('https://fhir.example.org/r4/')).toBe('https://fhir.example.org/r4');
    expect(checkFhirBase('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(() => checkFhirBase('http://fhir.example.org')).toThrow(/must be https/);
    expect(() => checkFhirBase('https://u:p@fhir.example.org')).toThrow(/without query, fragment or credentials/);
    expect(() => checkFhirBase('fhir')).toThrow(/is not a URL/);
  });
});
