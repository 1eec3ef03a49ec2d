/**
 * What a channel is given and what it reports. The alert engine builds one
 * Notification per recipient and channel; the channel tries to deliver it
 * (retrying as it sees fit) and reports every attempt through `onAttempt`,
 * which the engine records. The dedup key is the same for every attempt and
 * every re-send of one notification (after a fleet restart too), so a
 * receiver can drop repeats: delivery is at least once.
 */
export interface Notification {
  alertId: string;
  dedupKey: string;
  clinicId: string;
  clinicName: string;
  condition: string;
  severity: string;
  state: string;
  /** One line, fit for an SMS. */
  text: string;
  /** Subject line (email). */
  subject: string;
  shortCode: string;
  occurrences: number;
  firstAt: string;
  lastAt: string;
  /** Signed links; empty strings when no HTTP server is configured. */
  ackUrl: string;
  resolveUrl: string;
  /** Escalation step (counted across repeats) and epoch (re-opens). */
  step: number;
  epoch: number;
}

export interface Attempt {
  attempt: number;
  ok: boolean;
  error?: string;
  /** Webhook status code, box that sent an SMS, SMTP message id. */
  detail?: string;
  at: string;
}

export type OnAttempt = (a: Attempt) => void | Promise<void>;

/** A channel to one kind of target (a webhook, a phone number, an email address). */
export interface Channel<Target> {
  /** Deliver; resolves with the last attempt (ok or not); never rejects. */
  send(target: Target, n: Notification, onAttempt: OnAttempt): Promise<Attempt>;
  close?(): Promise<void>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
