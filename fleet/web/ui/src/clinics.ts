/** The clinics, loaded once per sign-in and refreshed on demand: pages show clinics by name, never by id. */
import { call } from './api.js';

export interface Clinic {
  id: string;
  name: string;
  timezone: string;
  phoneNumbers: string[];
  answeringService: string | null;
  contacts: { name: string; role?: string; phone?: string; email?: string }[];
  boxDefaults?: Record<string, unknown> | null;
}

let clinics = new Map<string, Clinic>();
let loading: Promise<Map<string, Clinic>> | null = null;

export function loadClinics(force = false): Promise<Map<string, Clinic>> {
  if (loading && !force) return loading;
  loading = (async () => {
    const all: Clinic[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await call<Clinic[]>('clinics.list', { limit: 1000, after });
      all.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.id;
    }
    clinics = new Map(all.sort((a, b) => a.name.localeCompare(b.name)).map((c) => [c.id, c]));
    return clinics;
  })();
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

export function clinicName(id: string | null | undefined): string {
  if (!id) return '—';
  return clinics.get(id)?.name ?? 'unknown clinic';
}

export function clinicList(): Clinic[] {
  return [...clinics.values()];
}

export function forgetClinics(): void {
  clinics = new Map();
  loading = null;
}
