/**
 * Network call forwarding (3GPP TS 27.007 7.11, AT+CCFC) for rollover:
 *
 * - conditional forwarding (busy, no reply with its time, not reachable) to
 *   the answering service, registered at provisioning so calls still roll
 *   over when the box is unplugged or without power;
 * - unconditional forwarding on and off on command (forwarding.set).
 *
 * Every change is idempotent: the state is queried first and nothing is
 * written when the network already has it; after a write it is queried back
 * and `confirmed` says whether the network now reports what was asked. Each
 * result is reported as a forwarding.state event. Operations run one at a
 * time (a second command waits for the first).
 */
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import { E164_PATTERN } from '../../shared/ids.js';
import type { Logger } from '../../shared/log.js';
import type { EventSink } from '../events.js';
import type { ForwardingStatus, Modem } from '../modem/types.js';
import { sameNumber } from './figures.js';

export type ForwardingReasonName = 'unconditional' | 'busy' | 'no_reply' | 'not_reachable';
export const FORWARDING_REASONS: ForwardingReasonName[] = ['unconditional', 'busy', 'no_reply', 'not_reachable'];
export const CONDITIONAL_REASONS: ForwardingReasonName[] = ['busy', 'no_reply', 'not_reachable'];

export interface ForwardingState {
  reason: ForwardingReasonName;
  enabled: boolean;
  number: string | null;
  confirmed: boolean;
}

const E164 = new RegExp(E164_PATTERN);

/** The voice line(s) of an AT+CCFC query answer: class 1 is voice (TS 27.007 7.11 <classx>). */
function voice(lines: ForwardingStatus[]): ForwardingStatus[] {
  return lines.filter((l) => (l.classx & 1) === 1);
}

/** What the network reports for voice: enabled (and to which number) or not. */
export function readVoiceState(lines: ForwardingStatus[]): {
  enabled: boolean;
  number: string | null;
  time: number | null;
} {
  const on = voice(lines).find((l) => l.enabled);
  return on ? { enabled: true, number: on.number, time: on.time } : { enabled: false, number: null, time: null };
}

function matches(
  got: { enabled: boolean; number: string | null; time: number | null },
  want: { enabled: boolean; number: string | null; timeS?: number | undefined },
): boolean {
  if (got.enabled !== want.enabled) return false;
  if (!want.enabled) return true;
  if (!sameNumber(got.number, want.number)) return false;
  return want.timeS === undefined || got.time === null || got.time === want.timeS;
}

export class ForwardingController {
  private chain: Promise<unknown> = Promise.resolve();
  /** Last state read from the network per reason (null: never read). */
  private readonly known = new Map<ForwardingReasonName, ForwardingState>();

  constructor(
    private readonly modem: Modem,
    private readonly sink: EventSink,
    private readonly log: Logger,
  ) {}

  /** The last state read back per reason (for the snapshot and the no-reply rollover rule). */
  knownState(reason: ForwardingReasonName): ForwardingState | null {
    return this.known.get(reason) ?? null;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Read one reason back from the network; reports it and remembers it. */
  query(reason: ForwardingReasonName, report = true): Promise<ForwardingState> {
    return this.serial(() => this.queryNow(reason, report));
  }

  private async queryNow(reason: ForwardingReasonName, report: boolean): Promise<ForwardingState> {
    const got = readVoiceState(await this.modem.queryForwarding(reason));
    const state: ForwardingState = {
      reason,
      enabled: got.enabled,
      number: got.number && E164.test(got.number) ? got.number : null,
      confirmed: true,
    };
    // Keep a national-format answer comparable with the number we asked for.
    if (got.enabled && state.number === null) state.number = this.known.get(reason)?.number ?? null;
    this.known.set(reason, state);
    if (report) await this.sink.record('forwarding.state', state);
    return state;
  }

  /**
   * Make the network forward `reason` to `number` (enabled) or not, unless it
   * already does; then read it back. Throws the modem's error after reporting
   * an unconfirmed state when the modem fails.
   */
  ensure(
    reason: ForwardingReasonName,
    enabled: boolean,
    number: string | null,
    timeS?: number,
  ): Promise<ForwardingState> {
    return this.serial(async () => {
      if (enabled && !number)
        throw new CallboxError(ErrorCode.ValidationFailed, `forwarding ${reason}: no number to forward to`, {
          problems: [{ path: '/number', value: 'nothing (missing)', expected: 'a phone number in E.164 form' }],
        });
      const want = { enabled, number, timeS: reason === 'no_reply' ? timeS : undefined };
      let state: ForwardingState;
      let failure: unknown = null;
      try {
        let before: { enabled: boolean; number: string | null; time: number | null } | null = null;
        try {
          before = readVoiceState(await this.modem.queryForwarding(reason));
        } catch (e) {
          this.log.warn({ reason, err: describeError(e) }, 'forwarding query before change failed; writing anyway');
        }
        if (before && matches(before, want)) {
          this.log.debug({ reason, enabled }, 'forwarding already as wanted; nothing written');
        } else {
          await this.modem.setForwarding(reason, enabled, enabled ? (number ?? undefined) : undefined, want.timeS);
        }
        const after = readVoiceState(await this.modem.queryForwarding(reason));
        const confirmed = matches(after, want);
        const reported = confirmed ? number : after.number && E164.test(after.number) ? after.number : null;
        state = { reason, enabled: after.enabled, number: after.enabled ? reported : null, confirmed };
        if (!confirmed)
          this.log.warn(
            { reason, wanted: enabled, got: after.enabled },
            'network did not confirm the forwarding change',
          );
      } catch (e) {
        // What was asked, unconfirmed: the fleet sees the attempt and that it is not known to hold.
        failure = e;
        state = { reason, enabled, number: enabled ? number : null, confirmed: false };
        this.log.error({ reason, enabled, err: describeError(e) }, 'forwarding change failed');
      }
      this.known.set(reason, state);
      await this.sink.record('forwarding.state', state);
      if (failure) throw failure;
      return state;
    });
  }

  /**
   * Provisioning: conditional forwarding to the rollover number when
   * settings.rollover.networkForwarding is on and a number is set; off
   * otherwise. Never throws: failures are reported as unconfirmed states.
   */
  async provision(settings: DeviceSettings): Promise<ForwardingState[]> {
    const { number, networkForwarding, noReplyTimeS } = settings.rollover;
    const enable = networkForwarding && number !== null;
    const out: ForwardingState[] = [];
    for (const reason of CONDITIONAL_REASONS) {
      try {
        out.push(await this.ensure(reason, enable, enable ? number : null, noReplyTimeS));
      } catch {
        out.push({ reason, enabled: enable, number: enable ? number : null, confirmed: false });
      }
    }
    return out;
  }
}
