/**
 * The modem driver's public face: what device/calls, device/io and the
 * uplink see. The driver (device/modem/driver.ts) implements Modem; the
 * typed events are produced from unsolicited result codes and from polling
 * AT+CLCC (the truth about calls; RING and +CLIP are only triggers).
 */
import type { EventEmitter } from 'node:events';

/** 3GPP TS 27.007 7.18 +CLCC <stat>. */
export type CallStat = 'active' | 'held' | 'dialing' | 'alerting' | 'incoming' | 'waiting';

/** One line of AT+CLCC: a call the network knows about. */
export interface CallInfo {
  /** <idx>: the call's index, stable for the call's life. */
  index: number;
  direction: 'mo' | 'mt';
  stat: CallStat;
  /** <mode> 0 = voice. */
  mode: 'voice' | 'data' | 'fax' | 'unknown';
  multiparty: boolean;
  /** Caller id as sent by the network, '' or null when withheld/unknown. */
  number: string | null;
  /** <type> of address: 145 international, 129 national/unknown. */
  numberType: number | null;
}

export type ModemState =
  | 'closed'
  | 'opening'
  | 'initializing'
  | 'ready'
  | 'sim_missing'
  | 'sim_pin'
  | 'resetting'
  | 'disconnected';

export type Registration =
  | 'not_registered'
  | 'home'
  | 'searching'
  | 'denied'
  | 'unknown'
  | 'roaming'
  | 'sms_only_home'
  | 'sms_only_roaming'
  | 'emergency_only'
  | 'csfb_not_preferred_home'
  | 'csfb_not_preferred_roaming';

export interface NetworkStatus {
  registration: Registration;
  lac: string | null;
  cellId: string | null;
  /** dBm from +CSQ, null when 99 (unknown). */
  signalDbm: number | null;
  /** The operator's name (+COPS long alphanumeric format, 27.007 7.3); null when only its code is known. */
  operator: string | null;
  /**
   * The operator's MCC-MNC ("310-260") when the modem gave a code instead of a name (numeric
   * format, 27.007 7.3); null otherwise. Optional: stand-ins that know only a name leave it out.
   */
  operatorCode?: string | null;
}

export interface ModemIdentity {
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  imei: string | null;
  imsi: string | null;
  /** The vendor profile in use. */
  profile: string;
}

/** 3GPP TS 27.007 7.11: reasons 0..5. */
export type ForwardingReason = 'unconditional' | 'busy' | 'no_reply' | 'not_reachable' | 'all' | 'all_conditional';

export interface ForwardingStatus {
  reason: ForwardingReason;
  enabled: boolean;
  number: string | null;
  /** Class of the status line (1 = voice). */
  classx: number;
  /** No-reply time in seconds, for no_reply. */
  time: number | null;
}

export interface SmsReceived {
  /** Storage index of the (first) part. */
  index: number;
  /** Storage indexes of every part the message was made of (delete them all once it is handled). */
  indexes: number[];
  from: string;
  text: string;
  /** Service centre time stamp, ISO 8601. */
  at: string | null;
  /**
   * The same for the same stored message however often it is read (SHA-256 hex of each part's
   * storage index and PDU as stored, which carries the sender and the service centre time stamp):
   * a message read again after a restart is known again.
   */
  key: string;
}

/**
 * Events emitted by a Modem. Call events come from URCs and are confirmed
 * by AT+CLCC; `calls` always carries the latest AT+CLCC list.
 */
export interface ModemEventMap {
  state: [state: ModemState, detail?: string];
  /** A RING or +CRING (count increments per RING of the same call). */
  ring: [info: { number: string | null; withheld: boolean; count?: number }];
  /** The list of calls changed (from AT+CLCC, polled or pushed). */
  calls: [calls: CallInfo[]];
  /** A call that was listed is gone (NO CARRIER, VOICE CALL: END, ^CEND, missing from CLCC). */
  callEnded: [info: { index: number | null; reason: string }];
  /** +CCWA (3GPP TS 27.007 7.12): a second call is waiting while one is active. */
  callWaiting: [info: { number: string | null; withheld: boolean }];
  network: [status: NetworkStatus];
  /**
   * A received SMS (on +CMTI, and for every message found stored when the modem becomes ready).
   * It stays on the SIM until deleteSms() is called for its indexes: the same message (same key)
   * is reported again after a restart until then.
   */
  sms: [sms: SmsReceived];
  ussd: [result: { status: number; text: string | null }];
  /** Garbage or a line no handler claimed; counted. */
  discarded: [line: string];
}

export interface Modem extends EventEmitter<ModemEventMap> {
  readonly state: ModemState;
  readonly identity: ModemIdentity;
  readonly network: NetworkStatus;
  /** Open the port and initialise; resolves when ready or in a reported non-ready state. */
  start(): Promise<void>;
  stop(): Promise<void>;
  listCalls(): Promise<CallInfo[]>;
  answer(): Promise<void>;
  hangUp(): Promise<void>;
  /** AT+CTFR: deflect the incoming call to another number. */
  deflect(number: string): Promise<void>;
  /** AT+CHLD=n. */
  hold(n: number): Promise<void>;
  setForwarding(reason: ForwardingReason, enable: boolean, number?: string, timeS?: number): Promise<void>;
  queryForwarding(reason: ForwardingReason): Promise<ForwardingStatus[]>;
  /** Sends text (GSM-7 text mode or UCS-2 PDU mode, split when long); resolves with message references. */
  sendSms(to: string, text: string): Promise<number[]>;
  readSms(index: number): Promise<SmsReceived>;
  deleteSms(index: number): Promise<void>;
  ussd(code: string): Promise<{ status: number; text: string | null }>;
  refreshNetwork(): Promise<NetworkStatus>;
  /** Whether speak() can work: the modem has its own text-to-speech (optional: stand-ins may lack it). */
  readonly canSpeak?: boolean;
  /**
   * Speak text into the call with the modem's text-to-speech; resolves 'done' when it finished,
   * 'stopped' when the signal aborted it. ModemUnsupported when the modem has none.
   */
  speak?(text: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<'done' | 'stopped'>;
  /** A tone to the caller in a call (AT+VTS; optional: stand-ins may lack it). */
  tone?(dtmf?: string, durationMs?: number): Promise<void>;
}
