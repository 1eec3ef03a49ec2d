/**
 * SMS channel: the fleet has no modem of its own, so an alert SMS is sent by
 * a box ('sms.send' device command): an online box of the alert's clinic
 * first, failing that another online box of the same organisation. Each box
 * tried is one attempt; the first that answers ok has sent it.
 */
import { describeError } from '../../shared/errors.js';
import type { BoxCommands } from '../commands.js';
import type { Attempt, Channel, Notification, OnAttempt } from './types.js';

export interface SmsTarget {
  to: string;
  clinicId: string;
}

/** Which boxes may send for a clinic, best first (online, same clinic, then organisation). */
export type SmsSenders = (clinicId: string) => Promise<string[]>;

export function smsText(n: Notification): string {
  const ack = `Reply ACK ${n.shortCode} to acknowledge`;
  const text = `${n.text} ${ack}.${n.ackUrl ? ` ${n.ackUrl}` : ''}`;
  return text.length <= 1530 ? text : `${text.slice(0, 1527)}...`;
}

export class SmsChannel implements Channel<SmsTarget> {
  constructor(
    private readonly commands: BoxCommands,
    private readonly senders: SmsSenders,
    private readonly opts: { timeoutMs: number; maxBoxes?: number },
  ) {}

  async send(target: SmsTarget, n: Notification, onAttempt: OnAttempt): Promise<Attempt> {
    const boxes = (await this.senders(target.clinicId)).slice(0, this.opts.maxBoxes ?? 3);
    if (boxes.length === 0) {
      const a: Attempt = {
        attempt: 1,
        ok: false,
        error: 'no online box to send through',
        at: new Date().toISOString(),
      };
      await onAttempt(a);
      return a;
    }
    let last: Attempt | undefined;
    let attempt = 0;
    for (const deviceId of boxes) {
      attempt++;
      try {
        const r = await this.commands.send(
          deviceId,
          'sms.send',
          { to: target.to, text: smsText(n) },
          { timeoutMs: this.opts.timeoutMs },
        );
        last = { attempt, ok: true, detail: `box ${deviceId}, ${r.parts} part(s)`, at: new Date().toISOString() };
      } catch (e) {
        last = { attempt, ok: false, error: `box ${deviceId}: ${describeError(e)}`, at: new Date().toISOString() };
      }
      await onAttempt(last);
      if (last.ok) return last;
    }
    return last as Attempt;
  }
}
