/** Rows of the alert tables as the store's types (both dialects keep times and JSON as TEXT). */
import type { Row } from '../store/sql-store.js';
import type { Condition } from './config.js';
import type { Alert, AlertPatch, Delivery } from './types.js';

export const ALERT_COLUMNS: Record<keyof AlertPatch, string> = {
  severity: 'severity',
  state: 'state',
  text: 'text',
  ackedAt: 'acked_at',
  ackedBy: 'acked_by',
  ackDeadline: 'ack_deadline',
  resolvedAt: 'resolved_at',
  resolvedBy: 'resolved_by',
  epoch: 'epoch',
  nextStep: 'next_step',
  nextStepAt: 'next_step_at',
  leaseOwner: 'lease_owner',
  leaseUntil: 'lease_until',
  details: 'details',
  lastAt: 'last_at',
};

export const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

export function toAlert(r: Row): Alert {
  return {
    id: String(r.id),
    clinicId: String(r.clinic_id),
    condition: r.condition as Condition,
    severity: r.severity as Alert['severity'],
    state: r.state as Alert['state'],
    shortCode: String(r.short_code),
    text: String(r.text),
    deviceId: str(r.device_id),
    occurrences: num(r.occurrences),
    firstAt: String(r.first_at),
    lastAt: String(r.last_at),
    ackedAt: str(r.acked_at),
    ackedBy: str(r.acked_by),
    ackDeadline: str(r.ack_deadline),
    resolvedAt: str(r.resolved_at),
    resolvedBy: str(r.resolved_by),
    epoch: num(r.epoch),
    nextStep: num(r.next_step),
    nextStepAt: str(r.next_step_at),
    leaseOwner: str(r.lease_owner),
    leaseUntil: str(r.lease_until),
    details: JSON.parse(String(r.details)) as Record<string, unknown>,
    updatedAt: String(r.updated_at),
  };
}

export function toDelivery(r: Row): Delivery {
  return {
    id: num(r.id),
    alertId: String(r.alert_id),
    epoch: num(r.epoch),
    step: num(r.step),
    channel: r.channel as Delivery['channel'],
    target: String(r.target),
    dedupKey: String(r.dedup_key),
    attempt: num(r.attempt),
    status: r.status as Delivery['status'],
    error: str(r.error),
    detail: str(r.detail),
    at: String(r.at),
  };
}
