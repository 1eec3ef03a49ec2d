/**
 * The after-call survey: after an answered call the box texts the caller one
 * question ("How did we do? Reply 1-5") and counts a reply 1..5 from that
 * number within `replyWindowH` as its answer.
 *
 * Rules (settings.survey):
 * - only calls answered by a person, only when `enabled`;
 * - never to a withheld or unknown number, nor to one that is not E.164
 *   ("+" and 7 to 15 digits: a national or short number may be a landline or
 *   a service), nor to one starting with an `excludeNumbers` entry; when
 *   `mobilePrefixes` is set, only to numbers starting with one of them;
 * - at most once per number per `windowH`, kept in the box's store (across
 *   restarts); a survey whose every try failed gives its claim back;
 * - sent `delayS` after the call ended (a scheduled survey survives a
 *   restart), through the modem's SMS service, tried `maxAttempts` times
 *   (30 s, doubling, between tries); each survey is one `survey.sent` event
 *   (status sent or failed);
 * - a reply is the digit alone (spaces and a final "." or "!" allowed), from
 *   the surveyed number (same line: sameNumber), to a survey sent within
 *   `replyWindowH` and not answered yet; it becomes a `survey.reply` event
 *   instead of `sms.received`. Anything else is an ordinary SMS.
 */
import type { EventBody } from '../../shared/contract/events.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { describeError } from '../../shared/errors.js';
import { E164_PATTERN } from '../../shared/ids.js';
import { getLogger, type Logger } from '../../shared/log.js';
import type { EventSink } from '../events.js';
import type { Modem } from '../modem/types.js';
import { type Clock, systemClock } from './clock.js';
import { HOUR_MS, sameNumber } from './figures.js';
import type { CallOutcome, CallRecord, SqlQueries } from './store.js';

const E164 = new RegExp(E164_PATTERN);
/** First wait between tries of a survey SMS; doubled each time. */
export const SURVEY_RETRY_MS = 30_000;

export type SurveySettings = DeviceSettings['survey'];
export type SurveySkip = 'disabled' | 'not_answered' | 'withheld' | 'not_e164' | 'excluded' | 'not_mobile';

/** May this call's caller be surveyed (before the once-per-window check, which needs the store)? */
export function surveyEligibility(
  call: Pick<CallRecord, 'number' | 'withheld'>,
  outcome: CallOutcome,
  s: SurveySettings,
): { ok: true; number: string } | { ok: false; why: SurveySkip } {
  if (!s.enabled) return { ok: false, why: 'disabled' };
  if (outcome !== 'answered') return { ok: false, why: 'not_answered' };
  if (call.withheld || !call.number) return { ok: false, why: 'withheld' };
  const n = call.number.trim();
  if (!E164.test(n)) return { ok: false, why: 'not_e164' };
  if (s.excludeNumbers.some((p) => n.startsWith(p))) return { ok: false, why: 'excluded' };
  if (s.mobilePrefixes.length > 0 && !s.mobilePrefixes.some((p) => n.startsWith(p))) {
    return { ok: false, why: 'not_mobile' };
  }
  return { ok: true, number: n };
}

/** The score of a reply ("4", " 5.", "3!"), or null when the text is not a reply. */
export function parseSurveyReply(text: string): number | null {
  const m = /^\s*([1-5])\s*[.!]?\s*$/.exec(text);
  return m ? Number(m[1]) : null;
}

export const SURVEY_MIGRATIONS: readonly { version: number; name: string; up: string }[] = [
  {
    version: 1,
    name: 'surveys',
    up: `
CREATE TABLE IF NOT EXISTS surveys (
  number TEXT PRIMARY KEY,
  call_id TEXT NOT NULL,
  claimed_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  sent_at INTEGER,
  replied_at INTEGER
);`,
  },
];

interface Row {
  number: string;
  call_id: string;
  claimed_at: number;
  due_at: number;
  state: 'scheduled' | 'sent' | 'failed' | 'replied';
  sent_at: number | null;
}

export interface SurveySenderOptions {
  db: SqlQueries;
  sink: EventSink;
  modem: () => Pick<Modem, 'sendSms'> | null;
  settings: () => SurveySettings;
  clock?: Clock;
  log?: Logger;
}

export class SurveySender {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly timers = new Map<string, unknown>();
  private readonly work = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly o: SurveySenderOptions) {
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? getLogger('device:calls:survey');
  }

  /** Surveys scheduled before a restart are due again (at once if their time has passed). */
  async start(): Promise<void> {
    this.stopped = false;
    const rows = await this.o.db.all<Row>("SELECT * FROM surveys WHERE state = 'scheduled'");
    for (const r of rows) this.schedule(r.number, r.call_id, r.due_at);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.work]);
  }

  /** Resolves once every survey in progress has been sent or given up (tests). */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
    return p;
  }

  /** A call ended: schedule its survey if the caller may get one. Never throws. */
  callEnded(call: Pick<CallRecord, 'callId' | 'number' | 'withheld'>, outcome: CallOutcome): void {
    void this.track(
      this.consider(call, outcome).catch((err) =>
        this.log.error({ err: describeError(err), callId: call.callId }, 'survey not scheduled'),
      ),
    );
  }

  private async consider(call: Pick<CallRecord, 'callId' | 'number' | 'withheld'>, outcome: CallOutcome) {
    const s = this.o.settings();
    const ok = surveyEligibility(call, outcome, s);
    if (!ok.ok) {
      if (ok.why !== 'disabled' && ok.why !== 'not_answered') {
        this.log.info({ callId: call.callId, why: ok.why }, 'no survey');
      }
      return;
    }
    const now = this.clock.now();
    const due = now + s.delayS * 1000;
    // One statement: claim the number, or take over a claim older than the window or one that failed.
    const { changes } = await this.o.db.run(
      `INSERT INTO surveys (number, call_id, claimed_at, due_at, state) VALUES (?, ?, ?, ?, 'scheduled')
       ON CONFLICT (number) DO UPDATE SET call_id = excluded.call_id, claimed_at = excluded.claimed_at,
         due_at = excluded.due_at, state = 'scheduled', sent_at = NULL, replied_at = NULL
       WHERE surveys.claimed_at < ? OR surveys.state = 'failed'`,
      [ok.number, call.callId, now, due, now - s.windowH * HOUR_MS],
    );
    if (changes === 0) {
      this.log.info({ callId: call.callId, why: 'surveyed_in_window' }, 'no survey');
      return;
    }
    this.schedule(ok.number, call.callId, due);
  }

  private schedule(number: string, callId: string, due: number): void {
    if (this.stopped) return;
    const t = this.clock.setTimeout(
      () => {
        this.timers.delete(callId);
        void this.track(this.send(number, callId));
      },
      Math.max(0, due - this.clock.now()),
    );
    this.timers.set(callId, t);
  }

  private waits = 0;

  private wait(ms: number): Promise<void> {
    const key = `retry:${++this.waits}`;
    return new Promise((r) => {
      const t = this.clock.setTimeout(() => {
        this.timers.delete(key);
        r();
      }, ms);
      this.timers.set(key, t);
    });
  }

  private async send(number: string, callId: string): Promise<void> {
    const s = this.o.settings();
    let reason = 'survey disabled since the call';
    let attempts = 0;
    if (s.enabled) {
      for (attempts = 1; attempts <= s.maxAttempts; attempts++) {
        if (this.stopped) return; // still 'scheduled': sent after the restart
        try {
          const modem = this.o.modem();
          if (!modem) throw new Error('no modem');
          await modem.sendSms(number, s.text);
          const at = this.clock.now();
          await this.o.db.run("UPDATE surveys SET state = 'sent', sent_at = ? WHERE number = ? AND call_id = ?", [
            at,
            number,
            callId,
          ]);
          await this.o.sink.record('survey.sent', { callId, number, status: 'sent', attempts }, new Date(at));
          this.log.info({ callId, attempts }, 'survey sent');
          return;
        } catch (e) {
          reason = describeError(e);
          this.log.warn({ callId, attempt: attempts, reason }, 'survey SMS not sent');
          if (attempts < s.maxAttempts) await this.wait(SURVEY_RETRY_MS * 2 ** (attempts - 1));
        }
      }
      attempts = s.maxAttempts;
    }
    // Given up: the claim is given back (a later call may be surveyed).
    await this.o.db.run("UPDATE surveys SET state = 'failed' WHERE number = ? AND call_id = ?", [number, callId]);
    if (attempts > 0) {
      await this.o.sink.record('survey.sent', {
        callId,
        number,
        status: 'failed',
        attempts,
        reason: reason.slice(0, 500),
      });
    }
  }

  /** The survey reply this SMS is, or null (an ordinary SMS). Read-only: `replied()` marks it answered. */
  async matchReply(from: string, text: string): Promise<EventBody<'survey.reply'> | null> {
    const score = parseSurveyReply(text);
    if (score === null || this.stopped) return null;
    const since = this.clock.now() - this.o.settings().replyWindowH * HOUR_MS;
    const rows = await this.o.db.all<Row>(
      "SELECT * FROM surveys WHERE state = 'sent' AND sent_at >= ? ORDER BY sent_at DESC",
      [since],
    );
    const r = rows.find((x) => sameNumber(x.number, from));
    if (!r || r.sent_at === null) return null;
    return { callId: r.call_id, number: r.number, score, sentAt: new Date(r.sent_at).toISOString() };
  }

  /** The reply was recorded: later replies from the number are ordinary SMS. */
  async replied(body: EventBody<'survey.reply'>): Promise<void> {
    await this.o.db.run(
      "UPDATE surveys SET state = 'replied', replied_at = ? WHERE number = ? AND call_id = ? AND state = 'sent'",
      [this.clock.now(), body.number, body.callId],
    );
  }

  /** Forget surveys claimed before `before` (the window is over). */
  async prune(before: number): Promise<void> {
    await this.o.db.run("DELETE FROM surveys WHERE claimed_at < ? AND state <> 'scheduled'", [before]);
  }
}
