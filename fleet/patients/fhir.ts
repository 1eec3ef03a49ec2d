/**
 * The FHIR R4 patient search: GET [base]/Patient?phone=<E.164, URL-encoded>
 * with `Authorization: Bearer <token>` and `Accept: application/fhir+json`,
 * given up after a timeout. The answer, a searchset Bundle, is read into one
 * of: found (one Patient: its name, HumanName use=official or else the
 * first, and birthDate), none, several (more than one Patient: none is
 * picked). Anything else is a FhirError whose message names the status or
 * the network error, never the token, the number or a patient.
 */
import { CallboxError, ErrorCode } from '../../shared/errors.js';

export interface PatientMatch {
  name: string | null;
  birthDate: string | null;
}

export type FhirAnswer =
  | { kind: 'found'; patient: PatientMatch }
  | { kind: 'none' }
  | { kind: 'several'; count: number };

export class FhirError extends Error {}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A FHIR base URL ops may set: https, or http to this machine (a stand-in, a local proxy). */
export function checkFhirBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `baseUrl "${url}" is not a URL; give e.g. https://fhir.example.org/r4`,
    );
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) {
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `baseUrl "${url}": the FHIR server must be https (http only to localhost, 127.0.0.1 or [::1])`,
    );
  }
  if (u.search || u.hash || u.username || u.password) {
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `baseUrl "${url}": give the base alone, without query, fragment or credentials (the token is set apart)`,
    );
  }
  return u.toString().replace(/\/+$/, '');
}

interface HumanName {
  use?: string;
  text?: string;
  family?: string;
  given?: string[];
  prefix?: string[];
}

/** The name to show: the official HumanName, else the first; its text, else given names and family. */
export function displayName(names: unknown): string | null {
  if (!Array.isArray(names) || names.length === 0) return null;
  const list = names.filter((n): n is HumanName => !!n && typeof n === 'object');
  const n = list.find((x) => x.use === 'official') ?? list[0];
  if (!n) return null;
  if (typeof n.text === 'string' && n.text.trim()) return n.text.trim().slice(0, 200);
  const parts = [...(Array.isArray(n.given) ? n.given : []), ...(typeof n.family === 'string' ? [n.family] : [])]
    .filter((p) => typeof p === 'string' && p.trim())
    .map((p) => p.trim());
  return parts.length > 0 ? parts.join(' ').slice(0, 200) : null;
}

/** Read a searchset Bundle of Patients. */
export function readPatientBundle(json: unknown): FhirAnswer {
  const b = json as { resourceType?: unknown; entry?: unknown };
  if (!b || typeof b !== 'object' || b.resourceType !== 'Bundle') {
    throw new FhirError('the FHIR server answered something other than a Bundle');
  }
  const entries = Array.isArray(b.entry) ? b.entry : [];
  const patients = entries
    .filter((e) => {
      const mode = (e as { search?: { mode?: unknown } })?.search?.mode;
      return mode === undefined || mode === 'match';
    })
    .map((e) => (e as { resource?: Record<string, unknown> })?.resource)
    .filter((r): r is Record<string, unknown> => !!r && r.resourceType === 'Patient');
  if (patients.length === 0) return { kind: 'none' };
  if (patients.length > 1) return { kind: 'several', count: patients.length };
  const p = patients[0] as Record<string, unknown>;
  return {
    kind: 'found',
    patient: {
      name: displayName(p.name),
      birthDate: typeof p.birthDate === 'string' && /^\d{4}(-\d{2}(-\d{2})?)?$/.test(p.birthDate) ? p.birthDate : null,
    },
  };
}

export interface FhirSearch {
  baseUrl: string;
  token: string;
  number: string;
  timeoutMs: number;
}

/** Search the clinic's FHIR server for patients with this phone number. */
export async function searchPatientByPhone(s: FhirSearch): Promise<FhirAnswer> {
  const url = `${s.baseUrl.replace(/\/+$/, '')}/Patient?phone=${encodeURIComponent(s.number)}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { Authorization: `Bearer ${s.token}`, Accept: 'application/fhir+json' },
      signal: AbortSignal.timeout(s.timeoutMs),
      redirect: 'error',
    });
  } catch (e) {
    const err = e as { name?: string; cause?: { code?: string } };
    if (err.name === 'TimeoutError' || err.name === 'AbortError') {
      throw new FhirError(`no answer from the FHIR server within ${s.timeoutMs} ms`);
    }
    throw new FhirError(`the FHIR server cannot be reached (${err.cause?.code ?? err.name ?? 'network error'})`);
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel().catch(() => undefined);
    throw new FhirError(
      `the FHIR server refused the token (HTTP ${res.status}): set it again with patients.settings.set`,
    );
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new FhirError(`the FHIR server answered HTTP ${res.status}`);
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch (e) {
    const name = (e as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new FhirError(`no answer from the FHIR server within ${s.timeoutMs} ms`);
    }
    throw new FhirError('the FHIR server answered with something that is not JSON');
  }
  return readPatientBundle(json);
}
