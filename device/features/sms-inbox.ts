/**
 * Received SMS, from the SIM to the outbox, with nothing lost and nothing
 * doubled:
 *
 *   modem 'sms' (on +CMTI, and for every message stored on the SIM each
 *   time the modem becomes ready: box start, port reopened, modem reset)
 *     -> record 'sms.received' under an id derived from the message itself
 *     -> once record() has resolved (committed to SQLite), AT+CMGD for each
 *        of its parts (when modem.deleteSmsAfterRead)
 *
 * Killed anywhere in between, the message is still on the SIM and is read
 * again at the next start. Its event id is the same (smsEventId: the box's
 * serial and the message's key, made from each part's index and PDU as
 * stored), so the outbox finds it still stored and returns that event, or,
 * if it was delivered meanwhile, sends it again under the same id and the
 * fleet (idempotent by id) keeps it once. A message whose event could not be
 * committed (store full or failing) stays on the SIM and is tried again by
 * a rescan `RETRY_MS` later.
 *
 * A reply 1-5 to the after-call survey (device/calls/survey.ts, through the
 * `claimer`) is recorded as `survey.reply` instead, under an id derived the
 * same way, and the survey is marked answered once that is committed.
 */
import { createHash } from 'node:crypto';
import type { EventBody } from '../../shared/contract/events.js';
import { describeError } from '../../shared/errors.js';
import { getLogger, type Logger } from '../../shared/log.js';
import type { EventSink } from '../events.js';
import type { GsmModem } from '../modem/driver.js';
import type { SmsReceived } from '../modem/types.js';

/** After a message could not be recorded, the SIM is listed again this much later. */
const RETRY_MS = 60_000;

/**
 * The event id of a received SMS: UUIDv7-shaped (RFC 9562: the service centre
 * time stamp in the 48-bit time field, so ids still sort by time; version 7,
 * variant 10), with the other 74 bits from SHA-256 of the box's serial (ids
 * are unique fleet-wide) and the message's key. The same stored message on
 * the same box always gets the same id. A message without a usable time stamp
 * (a mandatory field; only a broken PDU lacks it) gets time 0.
 */
export function smsEventId(
  sms: Pick<SmsReceived, 'key' | 'at'>,
  box: string,
  type: 'sms.received' | 'survey.reply' = 'sms.received',
): string {
  const ms = sms.at ? Date.parse(sms.at) : Number.NaN;
  const t = Number.isFinite(ms) && ms >= 0 && ms < 2 ** 48 ? ms : 0;
  const b = Buffer.alloc(16);
  b.writeUIntBE(t, 0, 6);
  createHash('sha256').update(`${type}|${box}|`).update(sms.key).digest().copy(b, 6, 0, 10);
  b[6] = 0x70 | ((b[6] as number) & 0x0f);
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The SMSC time as an ISO timestamp (now when the modem gave none or one that does not parse). */
function smsTime(at: string | null): string {
  const t = at ? new Date(at) : null;
  return t && !Number.isNaN(t.getTime()) ? t.toISOString() : new Date().toISOString();
}

/**
 * A reader of received SMS that claims some of them before they become `sms.received` (the survey: a reply
 * 1-5 from a surveyed number is a `survey.reply`). `match` must not change anything; `recorded` runs once the
 * claimed event is committed. A match that throws leaves the message an ordinary SMS.
 */
export interface SmsClaimer {
  match(from: string, text: string): Promise<EventBody<'survey.reply'> | null>;
  recorded(body: EventBody<'survey.reply'>): Promise<void>;
}

export interface SmsInboxStats {
  recorded: number;
  deleted: number;
  failed: number;
}

export class SmsInbox {
  readonly stats: SmsInboxStats = { recorded: 0, deleted: 0, failed: 0 };
  /** Keys of messages being recorded or deleted now (a rescan may report them again meanwhile). */
  private readonly busy = new Set<string>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly onSms = (sms: SmsReceived) => void this.handle(sms);
  private readonly log: Logger;
  /** Set before start: claims survey replies (device/calls/survey.ts). */
  claimer: SmsClaimer | undefined;

  constructor(
    private readonly modem: GsmModem,
    private readonly events: EventSink,
    private readonly deleteAfterRecord: boolean,
    /** The box's serial: names the box in every SMS event id. */
    private readonly box: string,
    log?: Logger,
  ) {
    this.log = log ?? getLogger('device:features:sms');
  }

  start(): void {
    this.stopped = false;
    this.modem.on('sms', this.onSms);
  }

  stop(): void {
    this.stopped = true;
    this.modem.off('sms', this.onSms);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private async handle(sms: SmsReceived): Promise<void> {
    if (this.busy.has(sms.key)) return;
    this.busy.add(sms.key);
    try {
      const reply = await this.claimed(sms);
      try {
        if (reply) {
          await this.events.record('survey.reply', reply, new Date(), {
            id: smsEventId(sms, this.box, 'survey.reply'),
          });
          await this.claimer
            ?.recorded(reply)
            .catch((err) =>
              this.log.warn({ err: describeError(err) }, 'survey reply recorded but not marked answered'),
            );
        } else {
          await this.events.record(
            'sms.received',
            { from: (sms.from || 'unknown').slice(0, 32), text: sms.text.slice(0, 1600), at: smsTime(sms.at) },
            new Date(),
            { id: smsEventId(sms, this.box) },
          );
        }
      } catch (e) {
        this.stats.failed++;
        this.log.error(
          { err: describeError(e), indexes: sms.indexes },
          'received SMS not recorded; it stays on the SIM',
        );
        this.retryLater();
        return;
      }
      this.stats.recorded++;
      if (!this.deleteAfterRecord) return;
      // Committed: now, and only now, the SIM may forget it.
      for (const index of sms.indexes) {
        try {
          await this.modem.deleteSms(index);
          this.stats.deleted++;
        } catch (e) {
          // Still on the SIM: read again later under the same event id, kept once.
          this.log.warn({ err: describeError(e), index }, 'recorded SMS not deleted from the SIM yet');
        }
      }
    } finally {
      this.busy.delete(sms.key);
    }
  }

  private async claimed(sms: SmsReceived): Promise<EventBody<'survey.reply'> | null> {
    if (!this.claimer || !sms.from) return null;
    try {
      return await this.claimer.match(sms.from, sms.text);
    } catch (e) {
      this.log.warn({ err: describeError(e) }, 'survey reply check failed; kept as an ordinary SMS');
      return null;
    }
  }

  private retryLater(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped && this.modem.state === 'ready') void this.modem.scanStoredSms();
    }, RETRY_MS);
    this.retryTimer.unref?.();
  }
}
