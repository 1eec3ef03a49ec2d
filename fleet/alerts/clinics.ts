/**
 * The clinic directory of the alert engine: what it needs to know about
 * clinics and boxes, read from the fleet store and the alert store and kept
 * for a short time (a box's clinic and the clinics 60 s, a clinic's alert
 * settings 10 s, its opening hours 60 s), plus live presence from the bus.
 * Rules ask it "which clinic is this box in", "is the clinic open now",
 * "who are its contacts", "which boxes can send an SMS for it".
 */
import { openAt } from '../../shared/clinic-hours.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Clinic, Store } from '../store/types.js';
import {
  type AlertContact,
  type ClinicAlertSettings,
  type Condition,
  clinicAlertSettings,
  type SilenceWindow,
} from './config.js';
import type { AlertStore } from './types.js';

export interface Clock {
  now(): number;
}

type Hours = Pick<DeviceSettings, 'clinic' | 'hours'>;

interface Cached<T> {
  value: T;
  until: number;
}

interface BoxLike {
  deviceId: string | null;
  online: boolean;
}

export interface ClinicDirectoryDeps {
  store: Store;
  alerts: AlertStore;
  clock: Clock;
  log: Logger;
  /** Live presence (the fleet's Presence.isOnline); without it, the bus and then the registry's flag. */
  isOnline?: (deviceId: string) => boolean;
}

/** When the silence windows covering `condition` at `at` end (undefined: not silenced). */
/** Conditions a silence window holds back only when it lists them: a person may be in danger. */
const NEVER_SILENCED = new Set<Condition>(['panic', 'voicemail_urgent']);

export function silenceEnd(s: ClinicAlertSettings, condition: Condition, at: number): number | undefined {
  let end: number | undefined;
  for (const w of s.silences as SilenceWindow[]) {
    const from = Date.parse(w.from);
    const until = Date.parse(w.until);
    if (at < from || at >= until) continue;
    const applies = w.conditions ? w.conditions.includes(condition) : !NEVER_SILENCED.has(condition);
    if (applies) end = Math.max(end ?? 0, until);
  }
  return end;
}

export class ClinicDirectory {
  private readonly boxClinic = new Map<string, Cached<{ clinicId: string | null }>>();
  private readonly clinics = new Map<string, Cached<Clinic | undefined>>();
  private readonly settings = new Map<string, Cached<ClinicAlertSettings>>();
  private readonly hours = new Map<string, Cached<Hours | null>>();
  /** Live presence from the bus (the store's flag lags by its flush interval). */
  private readonly presence = new Map<string, boolean>();

  constructor(private readonly deps: ClinicDirectoryDeps) {}

  private now(): number {
    return this.deps.clock.now();
  }

  private cached<T>(map: Map<string, Cached<T>>, key: string): T | undefined {
    const c = map.get(key);
    return c && c.until > this.now() ? c.value : undefined;
  }

  /** Learn every box's clinic and every clinic in two queries, so events need no registry lookups. */
  async prewarm(): Promise<void> {
    const now = this.now();
    for (const b of await this.deps.store.listBoxes({ claimState: 'approved' })) {
      if (b.deviceId && b.clinicId) {
        this.boxClinic.set(b.deviceId, { value: { clinicId: b.clinicId }, until: now + 60_000 });
      }
    }
    for (const c of await this.deps.store.listClinics()) this.clinics.set(c.id, { value: c, until: now + 60_000 });
  }

  /** A box was approved or decommissioned: look its clinic up again. */
  forgetBox(deviceId: string): void {
    this.boxClinic.delete(deviceId);
  }

  async clinicOfDevice(deviceId: string): Promise<string | null> {
    const c = this.cached(this.boxClinic, deviceId);
    if (c) return c.clinicId;
    const box = await this.deps.store.getBoxByDeviceId(deviceId);
    const clinicId = box && box.claimState === 'approved' ? box.clinicId : null;
    // Only a box's clinic is remembered: a box not (yet) in a clinic is looked up again next time.
    if (clinicId) this.boxClinic.set(deviceId, { value: { clinicId }, until: this.now() + 60_000 });
    return clinicId;
  }

  async clinic(clinicId: string): Promise<Clinic | undefined> {
    const c = this.clinics.get(clinicId);
    if (c && c.until > this.now()) return c.value;
    const clinic = await this.deps.store.getClinic(clinicId);
    this.clinics.set(clinicId, { value: clinic, until: this.now() + 10_000 });
    return clinic;
  }

  async clinicName(clinicId: string): Promise<string> {
    return (await this.clinic(clinicId))?.name ?? clinicId;
  }

  async settingsOf(clinicId: string): Promise<ClinicAlertSettings> {
    const c = this.cached(this.settings, clinicId);
    if (c) return c;
    const s = (await this.deps.alerts.getClinicSettings(clinicId)) ?? clinicAlertSettings({});
    this.settings.set(clinicId, { value: s, until: this.now() + 10_000 });
    return s;
  }

  async putSettings(clinicId: string, input: unknown, by: string): Promise<ClinicAlertSettings> {
    if (!(await this.clinic(clinicId))) {
      throw new CallboxError(ErrorCode.NotFound, `no clinic ${clinicId}`);
    }
    const s = clinicAlertSettings(input);
    await this.deps.alerts.putClinicSettings(clinicId, s);
    this.settings.delete(clinicId);
    this.hours.delete(clinicId);
    this.deps.log.info({ clinicId, by }, 'alert settings changed');
    return s;
  }

  /** Add a silence window (dropping the ones that ended). */
  async addSilence(clinicId: string, w: SilenceWindow, by: string): Promise<ClinicAlertSettings> {
    if (!(Date.parse(w.until) > Date.parse(w.from))) {
      throw new CallboxError(
        ErrorCode.ValidationFailed,
        `silence window: until (${w.until}) must be after from (${w.from})`,
      );
    }
    const s = await this.settingsOf(clinicId);
    const now = this.now();
    const keep = s.silences.filter((x) => Date.parse(x.until) > now);
    return this.putSettings(clinicId, { ...s, silences: [...keep, w] }, by);
  }

  /** The clinic's opening hours: the alert settings' own, else the hours in a box's settings. */
  private async hoursOf(clinicId: string): Promise<Hours | null> {
    const c = this.hours.get(clinicId);
    if (c && c.until > this.now()) return c.value;
    const clinic = await this.clinic(clinicId);
    const timezone = clinic?.timezone ?? 'UTC';
    const settings = await this.settingsOf(clinicId);
    let value: Hours | null = null;
    if (settings.hours) {
      const w = settings.hours;
      value = {
        clinic: { name: clinic?.name ?? clinicId, timezone },
        hours: {
          weekly: {
            mon: w.mon ?? [],
            tue: w.tue ?? [],
            wed: w.wed ?? [],
            thu: w.thu ?? [],
            fri: w.fri ?? [],
            sat: w.sat ?? [],
            sun: w.sun ?? [],
          },
          lunch: null,
          closures: [],
        },
      };
    } else {
      for (const box of await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })) {
        if (!box.deviceId) continue;
        const desired = await this.deps.store.getDesiredConfig(box.deviceId);
        if (desired) {
          value = { clinic: { ...desired.settings.clinic, timezone }, hours: desired.settings.hours };
          break;
        }
      }
    }
    this.hours.set(clinicId, { value, until: this.now() + 60_000 });
    return value;
  }

  /** Is the clinic open now on its own wall clock? Unknown hours count as open (alert rather than miss). */
  async isOpen(clinicId: string, at = this.now()): Promise<boolean> {
    const h = await this.hoursOf(clinicId);
    return h ? openAt({ timezone: h.clinic.timezone, ...h.hours }, at).open : true;
  }

  /** "14:05 Tue 26 Nov" on the clinic's wall clock. */
  async localTime(clinicId: string, at: number): Promise<string> {
    const tz = (await this.clinic(clinicId))?.timezone ?? 'UTC';
    try {
      return new Intl.DateTimeFormat('en-GB', {
        timeZone: tz,
        hour: '2-digit',
        minute: '2-digit',
        weekday: 'short',
        day: 'numeric',
        month: 'short',
        hourCycle: 'h23',
      }).format(new Date(at));
    } catch {
      return new Date(at).toISOString();
    }
  }

  /** The alert contacts: the alert settings' own, else the clinic's contacts in the registry. */
  async contactsOf(clinicId: string): Promise<AlertContact[]> {
    const s = await this.settingsOf(clinicId);
    if (s.contacts.length > 0) return s.contacts;
    const clinic = await this.clinic(clinicId);
    return (clinic?.contacts ?? []).map((c) => ({
      name: c.name,
      ...(c.phone ? { phone: c.phone } : {}),
      ...(c.email ? { email: c.email } : {}),
    }));
  }

  /** Presence as the bus reported it. */
  setPresence(deviceId: string, online: boolean): void {
    this.presence.set(deviceId, online);
  }

  online(b: BoxLike): boolean {
    if (!b.deviceId) return false;
    if (this.deps.isOnline) return this.deps.isOnline(b.deviceId);
    return this.presence.get(b.deviceId) ?? b.online;
  }

  /** Boxes that can send an SMS for a clinic: online ones of the clinic, then of its organisation. */
  async smsSenders(clinicId: string): Promise<string[]> {
    const online = (b: BoxLike) => b.deviceId !== null && this.online(b);
    const own = (await this.deps.store.listBoxes({ clinicId, claimState: 'approved' })).filter(online);
    const out = own.map((b) => b.deviceId as string);
    const clinic = await this.clinic(clinicId);
    if (clinic?.organisationId) {
      for (const other of await this.deps.store.listClinics({ organisationId: clinic.organisationId })) {
        if (other.id === clinicId) continue;
        for (const b of await this.deps.store.listBoxes({ clinicId: other.id, claimState: 'approved' })) {
          if (online(b)) out.push(b.deviceId as string);
        }
      }
    }
    return out;
  }
}
