/**
 * Replies to alert SMS ("ACK 1234", "resolve 1234", "#1234"), received by a
 * box and stored as `sms.received`: parsed here, acted on only when the
 * sender is a contact of the alert's clinic. Also the phone helpers the
 * rules use (same number in two notations, the masked last four digits).
 */
import type { Logger } from '../../shared/log.js';
import type { ClinicDirectory } from './clinics.js';
import type { AlertLifecycle } from './lifecycle.js';
import type { AlertStore } from './types.js';

const SMS_REPLY = /^\s*(ACK|OK|YES|A|RESOLVE|RES|R|DONE)?\s*#?(\d{4})\b/i;
const RESOLVE_VERBS = new Set(['RESOLVE', 'RES', 'R', 'DONE']);

export interface SmsReply {
  action: 'acknowledge' | 'resolve';
  /** The alert's 4-digit short code. */
  code: string;
}

/** What an SMS asks for, or undefined if it is not an alert reply (no verb means acknowledge). */
export function parseSmsReply(text: string): SmsReply | undefined {
  const m = SMS_REPLY.exec(text);
  if (!m) return undefined;
  const verb = (m[1] ?? 'ACK').toUpperCase();
  return { action: RESOLVE_VERBS.has(verb) ? 'resolve' : 'acknowledge', code: m[2] as string };
}

function digits(s: string): string {
  return s.replace(/\D/g, '');
}

/** Same phone? E.164 against a national form: compare the last 9 digits (at least 7). */
export function samePhone(a: string, b: string): boolean {
  const x = digits(a);
  const y = digits(b);
  if (x.length < 7 || y.length < 7) return false;
  const n = Math.min(9, x.length, y.length);
  return x.slice(-n) === y.slice(-n);
}

/** A number as it may be shown to people: "…1234". */
export function lastFour(number: string): string {
  return `…${digits(number).slice(-4)}`;
}

export interface SmsReplyDeps {
  alerts: AlertStore;
  directory: ClinicDirectory;
  lifecycle: AlertLifecycle;
  log: Logger;
}

/** Acknowledge or resolve the alert an SMS reply names, if it comes from one of the clinic's contacts. */
export async function applySmsReply(
  deps: SmsReplyDeps,
  viaClinicId: string,
  from: string,
  text: string,
): Promise<void> {
  const reply = parseSmsReply(text);
  if (!reply) {
    deps.log.info({ clinicId: viaClinicId, from }, 'received SMS is not an alert reply');
    return;
  }
  const alert = await deps.alerts.getActiveByCode(reply.code);
  if (!alert) {
    deps.log.info({ from, code: reply.code }, 'SMS reply names no active alert');
    return;
  }
  const contacts = await deps.directory.contactsOf(alert.clinicId);
  const who = contacts.find((c) => c.phone && samePhone(c.phone, from));
  if (!who) {
    deps.log.warn({ from, alertId: alert.id }, 'SMS reply from a number that is not a contact of the clinic: ignored');
    return;
  }
  const by = `sms:${who.name}`;
  if (reply.action === 'resolve') await deps.lifecycle.resolve(alert.id, by, 'SMS reply');
  else await deps.lifecycle.acknowledge(alert.id, by);
}
