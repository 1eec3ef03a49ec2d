/**
 * Signed acknowledgement links: /alerts/link?t=<token> (a query string, as
 * tokens are longer than a path parameter may be), where the token names the
 * alert, the action (ack or resolve), who it was sent to, the alert's
 * opening (its epoch, +1 at every re-open) and when it expires, and carries
 * an HMAC-SHA256 over all of that. Nothing is stored: a link is valid if its
 * signature is right, it has not expired, and (checked by the engine) the
 * alert is still in the opening it was sent for: a link from before a
 * re-open acknowledges nothing, and once an opening is acknowledged its
 * ack links change nothing more (single use).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

export type LinkAction = 'ack' | 'resolve';

export interface LinkClaims {
  alertId: string;
  action: LinkAction;
  /** Who the link was sent to (contact name or "webhook"). */
  who: string;
  /** Expiry, ms since the epoch. */
  exp: number;
  /** The alert's opening (Alert.epoch) the link was sent for. */
  epoch: number;
}

export class AlertLinks {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly publicUrl: string,
    private readonly ttlMs: number,
  ) {
    this.key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  token(alertId: string, action: LinkAction, who: string, now = Date.now(), epoch = 0): string {
    const payload = Buffer.from(
      JSON.stringify({ a: alertId, x: action, w: who, e: now + this.ttlMs, g: epoch }),
    ).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  url(alertId: string, action: LinkAction, who: string, now = Date.now(), epoch = 0): string {
    return `${this.publicUrl.replace(/\/+$/, '')}/alerts/link?t=${this.token(alertId, action, who, now, epoch)}`;
  }

  /** The claims of a valid token; NotAuthorized naming why otherwise. */
  verify(token: string, now = Date.now()): LinkClaims {
    const [payload, sig, extra] = token.split('.');
    if (!payload || !sig || extra !== undefined) throw new CallboxError(ErrorCode.NotAuthorized, 'malformed link');
    const want = Buffer.from(this.sign(payload));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) {
      throw new CallboxError(ErrorCode.NotAuthorized, 'link signature is not valid');
    }
    let c: { a?: unknown; x?: unknown; w?: unknown; e?: unknown; g?: unknown };
    try {
      c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw new CallboxError(ErrorCode.NotAuthorized, 'malformed link');
    }
    if (
      typeof c.a !== 'string' ||
      (c.x !== 'ack' && c.x !== 'resolve') ||
      typeof c.e !== 'number' ||
      !Number.isSafeInteger(c.g)
    ) {
      throw new CallboxError(ErrorCode.NotAuthorized, 'malformed link');
    }
    if (c.e < now) throw new CallboxError(ErrorCode.NotAuthorized, 'link has expired');
    return { alertId: c.a, action: c.x, who: typeof c.w === 'string' ? c.w : 'link', exp: c.e, epoch: c.g as number };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

/**
 * Where a voicemail plays: GET /api/v1/voicemail/<id>/audio on the fleet's HTTP server (authenticated there),
 * from the same public URL as the alert links.
 */
export function voicemailAudioUrl(publicUrl: string, voicemailId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/api/v1/voicemail/${encodeURIComponent(voicemailId)}/audio`;
}
