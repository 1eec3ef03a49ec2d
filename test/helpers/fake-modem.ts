/**
 * A small in-memory Modem for unit tests of device/calls (not a hardware
 * stand-in: the AT-speaking emulator is device/sim/modem/). It keeps a call
 * list the way AT+CLCC would report it and emits the driver's typed events;
 * tests play the network's part with incoming(), ring(), callerHangsUp().
 */
import { EventEmitter } from 'node:events';
import type {
  CallInfo,
  ForwardingReason,
  ForwardingStatus,
  Modem,
  ModemEventMap,
  ModemIdentity,
  ModemState,
  NetworkStatus,
  SmsReceived,
} from '../../device/modem/types.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';

type Method = 'answer' | 'hangUp' | 'deflect' | 'hold' | 'setForwarding' | 'queryForwarding' | 'sendSms' | 'listCalls';

export class FakeModem extends EventEmitter<ModemEventMap> implements Modem {
  state: ModemState = 'ready';
  readonly identity: ModemIdentity = {
    manufacturer: 'fake',
    model: 'fake',
    firmware: null,
    imei: null,
    imsi: null,
    profile: 'generic',
  };
  readonly network: NetworkStatus = {
    registration: 'home',
    lac: null,
    cellId: null,
    signalDbm: -70,
    operator: 'fake',
  };
  calls: CallInfo[] = [];
  readonly forwarding = new Map<ForwardingReason, { number: string; time: number | null }>();
  readonly sent: { to: string; text: string }[] = [];
  /** Every command, e.g. "deflect +15550009999", "setForwarding busy on". */
  readonly commands: string[] = [];
  /** The next call of a method fails with this error (once). */
  readonly failNext = new Map<Method, Error>();
  /** Answer forwarding queries with the number in national form (as some networks do). */
  nationalForwardingNumbers = false;
  /** AT+CLCC answers ERROR (a modem without it). */
  clccUnsupported = false;
  /** Ignore setForwarding (a network that accepts the command but changes nothing). */
  ignoreForwardingWrites = false;
  private nextIndex = 1;

  private check(m: Method): void {
    const e = this.failNext.get(m);
    if (e) {
      this.failNext.delete(m);
      throw e;
    }
  }

  private push(): void {
    this.emit(
      'calls',
      this.calls.map((c) => ({ ...c })),
    );
  }

  // ---- the network's side -----------------------------------------------------

  /** A call arrives: listed by CLCC (incoming, or waiting when another is up), then a first RING unless waiting. */
  incoming(number: string | null, opts: { ring?: boolean; push?: boolean } = {}): number {
    const index = this.nextIndex++;
    const busy = this.calls.some((c) => c.stat === 'active' || c.stat === 'held');
    this.calls.push({
      index,
      direction: 'mt',
      stat: busy ? 'waiting' : 'incoming',
      mode: 'voice',
      multiparty: false,
      number,
      numberType: number?.startsWith('+') ? 145 : number ? 129 : null,
    });
    if (opts.push !== false) this.push();
    if (opts.ring ?? !busy) this.ring(number);
    return index;
  }

  ring(number: string | null): void {
    this.emit('ring', { number, withheld: number === null });
  }

  /** The caller (or the far end) hangs up call `index`. */
  callerHangsUp(index: number): void {
    this.calls = this.calls.filter((c) => c.index !== index);
    this.emit('callEnded', { index, reason: 'NO CARRIER' });
    this.push();
  }

  /** The network reports the call active without our ATA (e.g. answered on an extension). */
  networkAnswers(index: number): void {
    const c = this.calls.find((x) => x.index === index);
    if (c) c.stat = 'active';
    this.push();
  }

  // ---- Modem ----------------------------------------------------------------------

  async start(): Promise<void> {
    this.state = 'ready';
    this.emit('state', 'ready');
  }
  async stop(): Promise<void> {
    this.state = 'closed';
  }
  async listCalls(): Promise<CallInfo[]> {
    this.check('listCalls');
    if (this.clccUnsupported) throw new CallboxError(ErrorCode.ModemCommandFailed, 'AT+CLCC: ERROR');
    return this.calls.map((c) => ({ ...c }));
  }
  async answer(): Promise<void> {
    this.commands.push('answer');
    this.check('answer');
    const c = this.calls.find((x) => x.stat === 'incoming');
    if (!c) throw new CallboxError(ErrorCode.ModemCommandFailed, 'ATA: NO CARRIER');
    c.stat = 'active';
    this.push();
  }
  async hangUp(): Promise<void> {
    this.commands.push('hangUp');
    this.check('hangUp');
    const gone = this.calls;
    this.calls = [];
    for (const c of gone) this.emit('callEnded', { index: c.index, reason: 'hang up' });
    this.push();
  }
  async deflect(number: string): Promise<void> {
    this.commands.push(`deflect ${number}`);
    this.check('deflect');
    const c = this.calls.find((x) => x.stat === 'incoming' || x.stat === 'waiting');
    if (!c) throw new CallboxError(ErrorCode.ModemCommandFailed, 'AT+CTFR: +CME ERROR: 3');
    this.calls = this.calls.filter((x) => x !== c);
    this.emit('callEnded', { index: c.index, reason: 'deflected' });
    this.push();
  }
  async hold(n: number): Promise<void> {
    this.commands.push(`hold ${n}`);
    this.check('hold');
    if (n !== 2) throw new CallboxError(ErrorCode.ModemUnsupported, `fake: AT+CHLD=${n}`);
    for (const c of this.calls) {
      if (c.stat === 'active') c.stat = 'held';
      else if (c.stat === 'waiting') c.stat = 'active';
    }
    this.push();
  }
  async setForwarding(reason: ForwardingReason, enable: boolean, number?: string, timeS?: number): Promise<void> {
    this.commands.push(`setForwarding ${reason} ${enable ? 'on' : 'off'}${timeS ? ` ${timeS}` : ''}`);
    this.check('setForwarding');
    if (this.ignoreForwardingWrites) return;
    if (enable) {
      if (!number) throw new CallboxError(ErrorCode.ModemCommandFailed, 'AT+CCFC: number required');
      this.forwarding.set(reason, { number, time: reason === 'no_reply' ? (timeS ?? 20) : null });
    } else this.forwarding.delete(reason);
  }
  async queryForwarding(reason: ForwardingReason): Promise<ForwardingStatus[]> {
    this.commands.push(`queryForwarding ${reason}`);
    this.check('queryForwarding');
    const f = this.forwarding.get(reason);
    if (!f) return [{ reason, enabled: false, number: null, classx: 7, time: null }];
    const number = this.nationalForwardingNumbers ? f.number.replace(/^\+1/, '') : f.number;
    return [{ reason, enabled: true, number, classx: 1, time: f.time }];
  }
  async sendSms(to: string, text: string): Promise<number[]> {
    this.commands.push(`sendSms ${to}`);
    this.check('sendSms');
    this.sent.push({ to, text });
    return [this.sent.length];
  }
  async readSms(index: number): Promise<SmsReceived> {
    throw new CallboxError(ErrorCode.NotFound, `fake: no SMS ${index}`);
  }
  async deleteSms(): Promise<void> {}
  async ussd(): Promise<{ status: number; text: string | null }> {
    return { status: 0, text: null };
  }
  async refreshNetwork(): Promise<NetworkStatus> {
    return this.network;
  }
}
