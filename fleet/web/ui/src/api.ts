/**
 * The fleet's HTTP API as the dashboard calls it: sessions (/api/session), every ops method as
 * GET (viewer methods, parameters in the query string) or POST (JSON body) /api/v1/<method>, with the
 * session's CSRF token on every state change. Errors arrive in one shape and are thrown as ApiError,
 * whose `field` lets a form show the message next to the field it is about.
 */
import type { OpsMethod } from '../../../../shared/contract/ops.js';

export type Role = 'viewer' | 'operator' | 'admin' | 'clinic';

export interface Session {
  user: string;
  role: Role;
  clinicId: string | null;
  csrfToken: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly value?: unknown,
    readonly accepted?: unknown,
  ) {
    super(message);
  }
}

let session: Session | null = null;
const listeners = new Set<(s: Session | null) => void>();

export function currentSession(): Session | null {
  return session;
}

export function onSession(fn: (s: Session | null) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setSession(s: Session | null): void {
  session = s;
  for (const fn of listeners) fn(s);
}

async function request<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session) headers['x-csrf-token'] = session.csrfToken;
  const res = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const e = (data as { error?: Partial<ApiError> } | null)?.error ?? {};
    if (res.status === 401 && session && !url.endsWith('/api/session')) setSession(null);
    throw new ApiError(
      res.status,
      String(e.code ?? res.status),
      String(e.message ?? res.statusText),
      e.field,
      e.value,
      e.accepted,
    );
  }
  return data as T;
}

/** The signed-in session, or null (no cookie, or it expired). */
export async function loadSession(): Promise<Session | null> {
  try {
    setSession(await request<Session>('GET', '/api/session'));
  } catch {
    setSession(null);
  }
  return session;
}

export async function signIn(user: string, password: string): Promise<Session> {
  const s = await request<Session>('POST', '/api/session', { user, password });
  setSession(s);
  return s;
}

export async function signOut(): Promise<void> {
  try {
    await request('DELETE', '/api/session');
  } finally {
    setSession(null);
  }
}

/**
 * Methods open to viewers (role 'viewer' in the contract), which the fleet serves as GET; the compiler
 * checks that each one listed exists. A method not listed is read as GET when its name says it reads.
 */
const READS = new Set<string>([
  'fleet.hello',
  'boxes.list',
  'boxes.show',
  'boxes.getConfig',
  'claims.list',
  'clinics.list',
  'clinics.show',
  'orgs.list',
  'events.list',
  'audit.list',
  'alerts.list',
  'alerts.show',
  'alerts.settings.get',
  'rollover.status',
  'releases.list',
  'rollouts.list',
  'rollouts.status',
  'figures.clinic',
  'figures.heatmap',
  'figures.targets.get',
  'telemetry.history',
  'export.calls',
  'export.events',
  'export.alerts',
] satisfies OpsMethod[]);

function isRead(method: string): boolean {
  return READS.has(method) || /\.(list|show|get|status|history)$/.test(method);
}

/** Call an ops method (or a method the contract does not list yet: the fleet answers what it knows). */
export function call<T = unknown>(method: OpsMethod | (string & {}), params: Record<string, unknown> = {}): Promise<T> {
  if (isRead(method)) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === '') continue;
      q.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    const qs = q.toString();
    return request<T>('GET', `/api/v1/${method}${qs ? `?${qs}` : ''}`);
  }
  return request<T>('POST', `/api/v1/${method}`, params);
}
