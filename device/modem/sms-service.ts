/**
 * SMS, composed by the driver (driver.ts): sending (GSM 7-bit text mode or
 * UCS-2 PDU mode, split when long: at/sms.ts planSms), receiving (+CMTI,
 * 27.005 3.4.1, read with AT+CMGR in PDU mode), the stored-message scan
 * (AT+CMGL=4 each time the modem becomes ready), long messages joined from
 * their parts (TS 23.040 9.2.3.24.1), and deletion (AT+CMGD) once the
 * consumer has the message safe.
 */
import { createHash } from 'node:crypto';
import { CallboxError, describeError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import { Priority } from './at/channel.js';
import { type DecodedPdu, decodePdu } from './at/pdu.js';
import {
  CMGL_ALL_PDU,
  cmgrPduLine,
  formatCmgd,
  formatCmgr,
  parseCmglPdu,
  parseCmgrPdu,
  parseCmgs,
  planSms,
} from './at/sms.js';
import { guard, Lock, type ModemHost } from './host.js';
import type { SmsReceived } from './types.js';

/** One stored SMS (a long message's single part) as read from the SIM. */
interface StoredPart {
  index: number;
  /** The PDU as stored (hex). */
  pdu: string;
  decoded: DecodedPdu;
}

export class SmsService {
  /** The message format the modem is in (AT+CMGF), null when unknown (after a reopen or a restart). */
  private cmgf: 0 | 1 | null = null;
  private smsRef = Math.floor(Math.random() * 256);
  private readonly lock = new Lock();
  private readonly groups = new Map<
    string,
    { parts: Map<number, StoredPart>; total: number; timer: ReturnType<typeof setTimeout> }
  >();

  constructor(private readonly host: ModemHost) {}

  /** The modem's format is unknown again (new port, modem restarted). */
  forgetMode(): void {
    this.cmgf = null;
  }

  /** Set-up once the SIM is ready: new messages stored and indicated with +CMTI (27.005 3.4.1), PDU mode. */
  async configure(tryCmd: (command: string) => Promise<void>): Promise<void> {
    await tryCmd('AT+CNMI=2,1,0,0,0');
    await this.setCmgf(0).catch(() => {});
  }

  /** Drop the parts of long messages still waiting (the driver stops). */
  stop(): void {
    for (const g of this.groups.values()) clearTimeout(g.timer);
    this.groups.clear();
  }

  /** +CMTI: read the new message (27.005 3.4.1, 4.4). */
  async onNewSms(index: number): Promise<void> {
    try {
      this.onStoredPart(await this.readPart(index));
    } catch (e) {
      this.host.log.warn({ index, err: describeError(e) }, 'could not read a received SMS');
    }
  }

  /**
   * Every message stored on the SIM (AT+CMGL=4, 27.005 4.1), reported like new
   * ones. Run each time the modem becomes ready: at start, after a reopen, a
   * reset or a reboot of the modem. Nothing is deleted here: the consumer
   * deletes a message once it is safe (device/features/sms.ts: once its event
   * is committed).
   */
  async scanStoredSms(): Promise<number> {
    const log = this.host.log;
    try {
      const entries = await guard('listSms', () =>
        this.lock.run(async () => {
          await this.setCmgf(0);
          const r = await this.host.cmd(
            { command: CMGL_ALL_PDU, prefixes: ['+CMGL:'], bodyLines: 1, timeoutMs: this.cmglTimeoutMs() },
            Priority.Sms,
          );
          return parseCmglPdu(r.lines);
        }),
      );
      let n = 0;
      for (const e of entries) {
        let decoded: DecodedPdu;
        try {
          decoded = decodePdu(e.pdu);
        } catch (err) {
          log.warn({ index: e.index, err: describeError(err) }, 'a stored SMS is unreadable; left on the SIM');
          continue;
        }
        if (decoded.type !== 'deliver') continue; // stored outgoing messages are not received ones
        this.onStoredPart({ index: e.index, pdu: e.pdu.toUpperCase(), decoded });
        n++;
      }
      if (n > 0) log.info({ count: n }, 'stored SMS found on the SIM');
      return n;
    } catch (e) {
      if (!isCallboxError(e, ErrorCode.ModemDisconnected) && !isCallboxError(e, ErrorCode.ShuttingDown))
        log.warn({ err: describeError(e) }, 'could not list the stored SMS');
      return 0;
    }
  }

  sendSms(to: string, text: string): Promise<number[]> {
    return guard('sendSms', async () => {
      this.smsRef = (this.smsRef + 1) & 0xff;
      const steps = planSms(to, text, this.smsRef);
      return this.lock.run(async () => {
        const refs: number[] = [];
        for (const s of steps) {
          await this.setCmgf(s.mode === 'text' ? 1 : 0);
          const r = await this.host.cmd(
            { command: s.command, body: s.body, prefixes: ['+CMGS:'], timeoutMs: this.host.config.smsTimeoutMs },
            Priority.Sms,
          );
          const mr = r.lines[0] ? parseCmgs(r.lines[0]) : null;
          if (mr !== null) refs.push(mr);
        }
        return refs;
      });
    });
  }

  /** One stored message on its own (a long message's part is just that part). */
  async readSms(index: number): Promise<SmsReceived> {
    const part = await this.readPart(index);
    return this.smsOf([part], part.decoded.text);
  }

  deleteSms(index: number): Promise<void> {
    return guard('deleteSms', async () => {
      await this.host.cmd({ command: formatCmgd(index) }, Priority.Sms);
    });
  }

  private async setCmgf(mode: 0 | 1): Promise<void> {
    if (this.cmgf === mode) return;
    await this.host.cmd({ command: `AT+CMGF=${mode}` }, Priority.Sms);
    this.cmgf = mode;
  }

  /**
   * AT+CMGL reads the SIM, not the network: a plain command's time plus the
   * time a full SIM's listing (about 50 messages of up to 176 PDU octets as hex,
   * ~20 KB) takes on the line at the configured speed.
   */
  private cmglTimeoutMs(): number {
    const c = this.host.config;
    return c.commandTimeoutMs + Math.ceil((20_000 * 10 * 1000) / c.baudRate);
  }

  /** One stored message (a long one's single part), in PDU mode so that any alphabet reads right. */
  private readPart(index: number): Promise<StoredPart> {
    return guard('readSms', () =>
      this.lock.run(async () => {
        await this.setCmgf(0);
        const r = await this.host.cmd({ command: formatCmgr(index), prefixes: ['+CMGR:'], bodyLines: 1 }, Priority.Sms);
        let decoded: DecodedPdu | null;
        try {
          decoded = parseCmgrPdu(r.lines);
        } catch (e) {
          throw new CallboxError(
            ErrorCode.ModemCommandFailed,
            `SMS at index ${index} is unreadable: ${describeError(e)}`,
            { index },
          );
        }
        const pdu = cmgrPduLine(r.lines);
        if (!decoded || !pdu)
          throw new CallboxError(ErrorCode.ModemCommandFailed, `no SMS at index ${index}`, { index });
        return { index, pdu: pdu.toUpperCase(), decoded };
      }),
    );
  }

  private smsOf(parts: StoredPart[], text: string): SmsReceived {
    const first = parts[0] as StoredPart;
    // From what is stored only: nothing that may read differently the next time (an IMSI not yet read).
    const h = createHash('sha256').update('sms');
    for (const p of parts) h.update(`|${p.index}:${p.pdu}`);
    return {
      index: first.index,
      indexes: parts.map((p) => p.index),
      from: first.decoded.address,
      text,
      at: first.decoded.at,
      key: h.digest('hex'),
    };
  }

  private onStoredPart(part: StoredPart): void {
    const pdu = part.decoded;
    if (!pdu.concat || pdu.concat.total <= 1) {
      this.host.emit('sms', this.smsOf([part], pdu.text));
      return;
    }
    // A part of a long message (TS 23.040 9.2.3.24.1): report it once all parts are in.
    const key = `${pdu.address}/${pdu.concat.ref}/${pdu.concat.total}`;
    let group = this.groups.get(key);
    if (!group) {
      const g = {
        parts: new Map<number, StoredPart>(),
        total: pdu.concat.total,
        timer: setTimeout(() => this.flushGroup(key), this.host.config.smsConcatWaitS * 1000),
      };
      this.groups.set(key, g);
      group = g;
    }
    group.parts.set(pdu.concat.seq, part);
    if (group.parts.size >= group.total) this.flushGroup(key);
  }

  /** Report a long SMS from the parts that came (all of them, or what arrived before the wait ran out). */
  private flushGroup(key: string): void {
    const g = this.groups.get(key);
    if (!g) return;
    this.groups.delete(key);
    clearTimeout(g.timer);
    const parts = [...g.parts.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    if (parts.length === 0) return;
    const missing = g.total - parts.length;
    if (missing > 0) this.host.log.warn({ missing, total: g.total }, 'long SMS reported with parts missing');
    this.host.emit('sms', this.smsOf(parts, parts.map((p) => p.decoded.text).join('')));
  }
}
