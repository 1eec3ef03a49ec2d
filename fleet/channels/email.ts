/**
 * Email channel over SMTP (nodemailer). The dedup key is the message's
 * Message-ID and an X-Callbox-Dedup-Key header, so a re-send after a fleet
 * restart is recognisably the same message. Retries with doubling backoff.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { backoffDelay } from '../../shared/backoff.js';
import { describeError } from '../../shared/errors.js';
import type { Attempt, Channel, Notification, OnAttempt } from './types.js';
import { sleep } from './types.js';

export interface EmailOptions {
  /** smtp://user:pass@host:port or smtps://... */
  url: string;
  from: string;
  attempts?: number;
  backoffMs?: number;
  timeoutMs?: number;
}

export function emailBody(n: Notification): string {
  const lines = [
    n.text,
    '',
    `Clinic: ${n.clinicName}`,
    `Severity: ${n.severity}`,
    `Occurrences: ${n.occurrences} (first ${n.firstAt}, last ${n.lastAt})`,
    `Code: ${n.shortCode} (reply to the alert SMS with "ACK ${n.shortCode}")`,
  ];
  if (n.ackUrl) lines.push('', `Acknowledge: ${n.ackUrl}`, `Resolve: ${n.resolveUrl}`);
  return lines.join('\n');
}

export class EmailChannel implements Channel<string> {
  private readonly transport: Transporter;

  constructor(private readonly opts: EmailOptions) {
    const t = opts.timeoutMs ?? 10_000;
    this.transport = nodemailer.createTransport(opts.url, {
      connectionTimeout: t,
      greetingTimeout: t,
      socketTimeout: t,
    } as nodemailer.TransportOptions);
  }

  async send(to: string, n: Notification, onAttempt: OnAttempt): Promise<Attempt> {
    const attempts = this.opts.attempts ?? 3;
    let last: Attempt = { attempt: 0, ok: false, error: 'not tried', at: new Date().toISOString() };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const info = await this.transport.sendMail({
          from: this.opts.from,
          to,
          subject: n.subject,
          text: emailBody(n),
          messageId: `<${n.dedupKey.replace(/[^A-Za-z0-9.-]/g, '.')}@callbox.alerts>`,
          headers: { 'X-Callbox-Dedup-Key': n.dedupKey, 'X-Callbox-Alert': n.alertId },
        });
        last = { attempt, ok: true, detail: String(info.messageId ?? ''), at: new Date().toISOString() };
      } catch (e) {
        last = { attempt, ok: false, error: describeError(e), at: new Date().toISOString() };
      }
      await onAttempt(last);
      if (last.ok) return last;
      if (attempt < attempts)
        await sleep(backoffDelay(attempt - 1, { initial: this.opts.backoffMs ?? 1000, max: Infinity }));
    }
    return last;
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
