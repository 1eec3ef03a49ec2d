/**
 * Can a clinic's alerts reach anyone? At start the fleet looks at each clinic's escalation policies, its
 * contacts and the configured channels, and warns about a clinic whose alerts would go nowhere ("0
 * notification(s)"): no webhook, no email (no SMTP server or no contact with an address), no SMS (no contact
 * with a phone).
 */
import type { AlertContact, AlertsConfig, ClinicAlertSettings } from './config.js';

/** Why nothing reaches anyone, or null when at least one channel of some escalation step works. */
export function unreachableReason(
  config: Pick<AlertsConfig, 'webhooks' | 'smtpUrl'>,
  settings: ClinicAlertSettings,
  contacts: AlertContact[],
): string | null {
  const used = new Set(Object.values(settings.policies).flatMap((p) => p.steps.flatMap((s) => s.channels)));
  const works = {
    webhook: config.webhooks.length + settings.webhooks.length > 0,
    email: Boolean(config.smtpUrl) && contacts.some((c) => c.email),
    sms: contacts.some((c) => c.phone),
  };
  if ([...used].some((c) => works[c as keyof typeof works])) return null;
  const why: string[] = [];
  if (used.has('webhook')) why.push('no webhook (alerts.webhooks, or the clinic alert settings webhooks)');
  if (used.has('email')) {
    why.push(config.smtpUrl ? 'no contact with an email address' : 'no email (alerts.smtpUrl is not set)');
  }
  if (used.has('sms')) why.push('no contact with a phone number for SMS');
  return why.join('; ');
}
