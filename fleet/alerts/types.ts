/**
 * What the alert engine keeps, and the store interface it keeps it in
 * (fleet/alerts/store.ts implements it for SQLite and PostgreSQL; one
 * conformance suite, test/helpers/alert-store-conformance.ts, holds both to it).
 *
 * Times are ISO 8601 UTC strings made by toISOString(), so they compare as
 * text. Every change the engine makes is a single conditional statement
 * (update ... where the state is still what the engine saw), so two fleet
 * instances, or one restarted in the middle of a step, never both act.
 */
import type { ChannelName, ClinicAlertSettings, Condition, Severity } from './config.js';

export type AlertState = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  id: string;
  clinicId: string;
  condition: Condition;
  severity: Severity;
  state: AlertState;
  /** Four digits, unique among alerts not resolved: "ACK 4821" by SMS. */
  shortCode: string;
  /** The message people get (no raw caller numbers). */
  text: string;
  /** The box it is about, if one. */
  deviceId: string | null;
  occurrences: number;
  firstAt: string;
  lastAt: string;
  ackedAt: string | null;
  ackedBy: string | null;
  /** An acknowledged alert not resolved by then opens again. */
  ackDeadline: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  /** +1 at every re-open; part of every dedup key. */
  epoch: number;
  /** The next escalation step, counted across repeats (round * steps + step). */
  nextStep: number;
  /** When it is due; null when the escalation has ended or waits for nothing. */
  nextStepAt: string | null;
  leaseOwner: string | null;
  leaseUntil: string | null;
  details: Record<string, unknown>;
  updatedAt: string;
}

export type NewAlert = Pick<Alert, 'clinicId' | 'condition' | 'severity' | 'text' | 'deviceId' | 'details'> & {
  at: string;
  /** When the first step is due (now, or the end of a silence window). */
  nextStepAt: string | null;
  /** Create it holding the lease on its first step (the creator runs that step at once). */
  lease?: { owner: string; until: string };
  /**
   * The stored event that opens it: if that event already opened or counted an alert of this condition,
   * nothing is created (Conflict with details.alreadyApplied and the alert in details.existingId).
   */
  eventId?: string;
};

export type AlertPatch = Partial<
  Pick<
    Alert,
    | 'severity'
    | 'state'
    | 'text'
    | 'ackedAt'
    | 'ackedBy'
    | 'ackDeadline'
    | 'resolvedAt'
    | 'resolvedBy'
    | 'epoch'
    | 'nextStep'
    | 'nextStepAt'
    | 'leaseOwner'
    | 'leaseUntil'
    | 'details'
    | 'lastAt'
  >
>;

/** Conditions an update requires (compare-and-set). */
export interface AlertExpect {
  state?: AlertState | AlertState[];
  epoch?: number;
  nextStep?: number;
}

export interface AlertFilter {
  clinicId?: string;
  state?: AlertState | 'active';
  condition?: Condition;
  /** Only alerts older than this id (paging newest first). */
  before?: string;
  limit?: number;
}

export type DeliveryStatus = 'sent' | 'failed' | 'skipped';

export interface Delivery {
  id: number;
  alertId: string;
  epoch: number;
  step: number;
  channel: ChannelName;
  /** Contact name, or the webhook URL host. */
  target: string;
  /** The same for every attempt of one notification; receivers drop repeats. */
  dedupKey: string;
  attempt: number;
  status: DeliveryStatus;
  error: string | null;
  /** Which box sent an SMS, the webhook's status code, the SMTP message id. */
  detail: string | null;
  at: string;
}

export type NewDelivery = Omit<Delivery, 'id'>;

export interface AlertLogEntry {
  id: number;
  alertId: string;
  at: string;
  /** opened, occurred, step, acknowledged, resolved, reopened, exhausted, silenced. */
  action: string;
  by: string | null;
  detail: string | null;
}

/** A condition seen but not yet an alert (waits for its grace time or for hours). */
export interface PendingCondition {
  key: string;
  clinicId: string;
  condition: Condition;
  deviceId: string | null;
  since: string;
  meta: Record<string, unknown>;
}

export interface RolloverBox {
  deviceId: string;
  confirmed: boolean;
  error?: string;
}

export interface Rollover {
  clinicId: string;
  active: boolean;
  number: string;
  since: string;
  reason: string;
  by: string;
  alertId: string | null;
  /** Roll back by hand only, or also when the clinic answers a call again. */
  backAfter: 'manual' | 'answered';
  /** Scheduled end (the sweep rolls back then), or null. */
  backAt: string | null;
  boxes: RolloverBox[];
  endedAt: string | null;
  endedBy: string | null;
}

export interface AlertStore {
  readonly kind: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  migrateDown(version: number): Promise<void>;
  schemaVersion(): Promise<number>;
  close(): Promise<void>;

  /**
   * Open a new alert. Conflict (with the existing one in details.existingId)
   * if the clinic already has an active alert for the condition.
   */
  createAlert(alert: NewAlert): Promise<Alert>;
  getAlert(id: string): Promise<Alert | undefined>;
  /** The active (not resolved) alert with this short code. */
  getActiveByCode(shortCode: string): Promise<Alert | undefined>;
  getActive(clinicId: string, condition: Condition): Promise<Alert | undefined>;
  listAlerts(filter?: AlertFilter): Promise<Alert[]>;
  /** Apply the patch if the alert still matches `expect`; undefined if it does not (or no such alert). */
  updateAlert(id: string, patch: AlertPatch, expect?: AlertExpect): Promise<Alert | undefined>;
  /**
   * occurrences + 1, lastAt = at, on an active alert. With `eventId`, once per event and condition: an
   * event already counted changes nothing (the alert is returned as it is).
   */
  addOccurrence(id: string, at: string, eventId?: string): Promise<Alert | undefined>;
  /** Forget which events were counted before `before` (they are far behind the engine's cursor). */
  pruneEventEffects(before: string): Promise<number>;
  /**
   * Take the lease on step `nextStep` of `epoch` for `owner` until `until`,
   * if the alert is open at that step and the lease is free, expired or ours.
   */
  claimStep(id: string, epoch: number, nextStep: number, owner: string, now: string, until: string): Promise<boolean>;
  /** Open alerts whose next step is due at or before `now`. */
  listDue(now: string, limit?: number): Promise<Alert[]>;
  /** Acknowledged alerts whose acknowledgement ran out at or before `now`. */
  listAckExpired(now: string): Promise<Alert[]>;
  /** The earliest next step or acknowledgement deadline of any active alert. */
  nextWake(): Promise<string | undefined>;

  /** Alerts not resolved, counted by state (the fleet's /metrics). */
  countActiveByState(): Promise<Record<string, number>>;
  /** Deliveries with this status, all alerts together (the fleet's /metrics). */
  countDeliveries(status: DeliveryStatus): Promise<number>;

  recordDelivery(d: NewDelivery): Promise<Delivery>;
  listDeliveries(alertId: string): Promise<Delivery[]>;

  appendLog(entry: Omit<AlertLogEntry, 'id'>): Promise<void>;
  listLog(alertId: string): Promise<AlertLogEntry[]>;

  /**
   * The missed-calls window: record an unanswered call (once per event id),
   * forget the clinic's calls at or before `since`, and return the times of
   * those after it, oldest first.
   */
  addMissedCall(clinicId: string, eventId: string, at: string, since: string): Promise<string[]>;
  /** The clinic answered: its window starts again. */
  clearMissedCalls(clinicId: string): Promise<void>;

  putPending(p: PendingCondition): Promise<void>;
  deletePending(key: string): Promise<boolean>;
  listPending(): Promise<PendingCondition[]>;

  putRollover(r: Rollover): Promise<void>;
  getRollover(clinicId: string): Promise<Rollover | undefined>;
  listRollovers(activeOnly?: boolean): Promise<Rollover[]>;

  getClinicSettings(clinicId: string): Promise<ClinicAlertSettings | undefined>;
  putClinicSettings(clinicId: string, settings: ClinicAlertSettings): Promise<void>;
}
