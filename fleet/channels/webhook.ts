/**
 * Webhook channel: POST the notification as JSON.
 *
 * Headers: `X-Callbox-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
 * keyed with the webhook's secret, `X-Callbox-Timestamp` (ms since the
 * epoch; a receiver refuses old ones to stop replays) and
 * `X-Callbox-Dedup-Key` (same on every retry and re-send). A 2xx answer is
 * delivered; anything else, a timeout or a refused connection is retried
 * with doubling backoff up to `attempts` times; a 4xx other than 408/429 is
 * not retried (the receiver will not change its mind).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { backoffDelay } from '../../shared/backoff.js';
import { describeError } from '../../shared/errors.js';
import type { Attempt, Channel, Notification, OnAttempt } from './types.js';
import { sleep } from './types.js';

export interface WebhookTarget {
  url: string;
  secret: string;
}

export interface WebhookOptions {
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

export const SIGNATURE_HEADER = 'x-callbox-signature';
export const TIMESTAMP_HEADER = 'x-callbox-timestamp';
export const DEDUP_HEADER = 'x-callbox-dedup-key';

export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** For receivers (and tests): is this signature right for this body? */
export function verifyWebhook(secret: string, timestamp: string, body: string, signature: string): boolean {
  const want = Buffer.from(signWebhook(secret, timestamp, body));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

export function webhookBody(n: Notification): string {
  return JSON.stringify({ v: 1, type: 'alert', ...n });
}

export class WebhookChannel implements Channel<WebhookTarget> {
  constructor(private readonly opts: WebhookOptions) {}

  async send(target: WebhookTarget, n: Notification, onAttempt: OnAttempt): Promise<Attempt> {
    const body = webhookBody(n);
    let last: Attempt = { attempt: 0, ok: false, error: 'not tried', at: new Date().toISOString() };
    for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
      const timestamp = String(Date.now());
      let retry = true;
      try {
        const res = await fetch(target.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(target.secret, timestamp, body),
            [TIMESTAMP_HEADER]: timestamp,
            [DEDUP_HEADER]: n.dedupKey,
          },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          last = { attempt, ok: true, detail: `HTTP ${res.status}`, at: new Date().toISOString() };
        } else {
          retry = res.status >= 500 || res.status === 408 || res.status === 429;
          last = { attempt, ok: false, error: `HTTP ${res.status}`, at: new Date().toISOString() };
        }
      } catch (e) {
        const err = e as Error;
        const why = err.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : describeError(e);
        const c = (err as { cause?: { code?: string; message?: string } }).cause;
        const cause = c?.code ?? c?.message;
        last = { attempt, ok: false, error: cause ? `${why} (${cause})` : why, at: new Date().toISOString() };
      }
      await onAttempt(last);
      if (last.ok || !retry) return last;
      if (attempt < this.opts.attempts)
        await sleep(backoffDelay(attempt - 1, { initial: this.opts.backoffMs, max: Infinity }));
    }
    return last;
  }
}
