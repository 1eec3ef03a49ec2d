/**
 * A GSM modem emulator on a real pseudo-terminal. Product code: the demo
 * and the end-to-end tests use it; the driver opens its port through the
 * real serialport and cannot tell it from a USB modem.
 *
 * socat makes a pty pair (`pty,raw,echo=0,link=<dir>/emu` and
 * `.../modem`); the emulator owns the first end, the driver opens `path`.
 * Commands are answered by a list of behaviours (behaviors.ts); tests
 * prepend their own.
 *
 * API (stable; other modules rely on it):
 *   const emu = new ModemEmulator({ vendor: 'sim7600', ringIntervalMs: 200 });
 *   const { path } = await emu.start();       // open this with createModem({ ...cfg, path })
 *   await emu.stop();
 *   emu.incomingCall('+15551234567')          // -> index; RING + +CLIP every ringIntervalMs, CLCC shows 'incoming'
 *   emu.incomingCall(null)                     // withheld caller id (+CLIP: "",128,,,,1)
 *   emu.incomingCall(n) while a call is active // -> waiting call, +CCWA
 *   emu.callerHangsUp(index?)                  // remote end hangs up (vendor end lines)
 *   ATA by the driver makes the incoming call active; AT+CHUP/ATH end it
 *   emu.calls                                  // current calls (EmuCall[])
 *   emu.forwarding                             // Map<reason 0..3, { enabled, number, classx, time }>
 *   emu.smsSent                                // [{ to, text, parts }] (concatenated parts joined)
 *   emu.receiveSms(from, text)                 // stored on the "SIM" (lowest free index), +CMTI: "SM",<index>
 *                                              // if AT+CNMI asked for it; kept across unplug/reboot/box
 *                                              // restarts; when the SIM is full (smsCapacity) the network
 *                                              // holds it and delivers it once AT+CMGD frees a place
 *   emu.smsStore / emu.smsAtNetwork            // what is on the SIM / still waiting at the network
 *   AT+CMGR, AT+CMGL (PDU <stat> 0..4, text "ALL"...), AT+CMGD=<i>[,<delflag>] as 27.005 says
 *   emu.networkLoss() / emu.networkRestore()   // registration + signal, with +CREG URCs
 *   emu.setSignal(csq)                         // 0..31, 99 unknown
 *   emu.injectGarbage(bytes?)                  // random or given bytes on the line
 *   emu.urc(line)                              // any unsolicited line
 *   emu.prepend(behavior) / emu.removeBehavior(behavior)  // misbehave: never(), slow(), fails()
 *   emu.replyDelayMs = 50                      // every reply late
 *   await emu.unplug(); await emu.replug();    // the port vanishes and comes back (same path)
 *   emu.removeNode(); emu.restoreNode()        // only the device node goes (the pty stays)
 *   await emu.reboot()                         // modem restarts: calls gone, settings reset, "RDY"
 *   emu.sim.state = 'missing' | 'pin' | 'ready'
 *   await emu.waitForCommand(/^ATA$/)          // resolves with the command line
 *   await emu.waitUntil(() => emu.smsSent.length > 0)
 *   emu.commands                               // every command received, in order
 *   emu.spoken                                 // texts the modem was asked to speak (AT+CTTS=2 / AT+QTTS=2),
 *                                              // with the vendor command and the play path; the done URC
 *                                              // (+CTTS: 0 / +QTTS: 0) follows after ttsMsPerChar per character;
 *                                              // a call that ends stops playback without it
 *   emu.tones                                  // AT+VTS tones sent to the caller ({ dtmf, durationMs })
 *   events: 'tts' ({ text, command, remote }), 'command' (line), 'sms-sent' ({to,text,parts}), 'sms-stored' ({index,from,text}), 'sms-deleted' (index, sms)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import {
  type Concat,
  encodeDeliver,
  fromGsm7,
  packSeptets,
  splitText,
  toGsm7,
  unpackSeptets,
} from '../../modem/at/pdu.js';
import { guardedBinding } from '../../modem/transport.js';
import type { CallStat } from '../../modem/types.js';
import { clccLine, defaultBehaviors, type EmulatorBehavior, type Reply } from './behaviors.js';

export type EmulatedVendor = 'generic' | 'sim7600' | 'sim800' | 'ec25' | 'huawei';

export interface EmuCall {
  index: number;
  direction: 'mt' | 'mo';
  stat: CallStat;
  number: string | null;
}

export interface ModemEmulatorOptions {
  vendor?: EmulatedVendor;
  /** Time between RINGs of an incoming call (real networks: about 3 s). */
  ringIntervalMs?: number;
  /** Directory for the pty links (default: a new temp dir). */
  dir?: string;
  /** Extra behaviours tried before the defaults. */
  behaviors?: EmulatorBehavior[];
}

interface Settings {
  echo: boolean;
  cmee: 0 | 1 | 2;
  clip: boolean;
  crc: boolean;
  creg: 0 | 1 | 2;
  cmgf: 0 | 1;
  cvhu: 0 | 1;
  /** AT+CNMI <mt> (27.005 3.4.1): 1 = indicate stored messages with +CMTI; 0 (the default) = store silently. */
  cnmiMt: number;
  clccPush: boolean;
  qindCcinfo: boolean;
  /** AT+COPS=3,<format> (27.007 7.3): the format of +COPS answers; numeric (2) until the host sets one. */
  copsFormat: 0 | 1 | 2;
  /** SIMCom AT+CDTAM: TTS to the remote party (1) or the local speaker (0, the default). */
  cdtam: 0 | 1;
}

function defaultSettings(): Settings {
  return {
    echo: true,
    cmee: 0,
    clip: false,
    crc: false,
    creg: 0,
    cmgf: 0,
    cvhu: 1,
    cnmiMt: 0,
    clccPush: false,
    qindCcinfo: false,
    copsFormat: 2,
    cdtam: 0,
  };
}

export interface SpokenText {
  text: string;
  command: 'AT+CTTS' | 'AT+QTTS';
  /** SIMCom's play path (AT+CDTAM): true when played to the remote party. Quectel: always true. */
  remote: boolean;
}

export interface SentSms {
  to: string;
  text: string;
  parts: number;
}

export interface StoredSms {
  from: string;
  text: string;
  pdu: string;
  scts: string;
  /** 27.005 <stat>: 0 "REC UNREAD", 1 "REC READ" (reading a message marks it read). */
  stat: 0 | 1;
  /** How often it was read (AT+CMGR) or listed (AT+CMGL): more than once when a box died before deleting it. */
  reads: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class ModemEmulator extends EventEmitter {
  readonly vendor: EmulatedVendor;
  ringIntervalMs: number;
  /** Added to every reply. */
  replyDelayMs = 0;
  settings: Settings = defaultSettings();
  net = { stat: 1, lac: '00C3', cellId: '0000A13B', csq: 20, operator: 'Callbox Mobile', plmn: '001-01' };
  sim: { state: 'ready' | 'missing' | 'pin'; pin: string } = { state: 'ready', pin: '1234' };
  imei = '867584030123456';
  imsi = '001010123456789';
  calls: EmuCall[] = [];
  forwarding = new Map<number, { enabled: boolean; number: string; classx: number; time: number | null }>();
  smsSent: SentSms[] = [];
  smsStore = new Map<number, StoredSms>();
  /** Places on the SIM for received messages (SIMs hold a few dozen). */
  smsCapacity = 30;
  /** Parts the network could not deliver yet because the SIM was full (delivered when a place frees). */
  smsAtNetwork: Omit<StoredSms, 'stat' | 'reads'>[] = [];
  deflections: { number: string | null; to: string }[] = [];
  ussdAnswers = new Map<string, string>([['*100#', 'Your balance is 5.00 EUR']]);
  readonly commands: string[] = [];
  /** Tones sent to the caller with AT+VTS, in order (durationMs null: the network's default). */
  readonly tones: { dtmf: string; durationMs: number | null }[] = [];
  /** What the modem was asked to speak, in order. */
  readonly spoken: SpokenText[] = [];
  /** How long speaking takes per character of text (ms; real TTS: about 60). */
  ttsMsPerChar = 60;
  private ttsTimer: ReturnType<typeof setTimeout> | null = null;

  private behaviors: EmulatorBehavior[];
  private readonly dir: string;
  private readonly ownDir: boolean;
  private socat: ChildProcess | null = null;
  private port: SerialPort | null = null;
  private input = '';
  private promptHandler: ((body: string) => Reply) | null = null;
  private work: Promise<void> = Promise.resolve();
  private ringTimers = new Map<number, ReturnType<typeof setInterval>>();
  private mr = 0;
  private parts = new Map<string, string[]>();
  private smsRef = 0;
  private running = false;
  private booting = false;

  constructor(opts: ModemEmulatorOptions = {}) {
    super();
    this.vendor = opts.vendor ?? 'generic';
    this.ringIntervalMs = opts.ringIntervalMs ?? 3000;
    this.behaviors = [...(opts.behaviors ?? []), ...defaultBehaviors()];
    this.ownDir = opts.dir === undefined;
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'callbox-modem-'));
  }

  /** The path the driver opens. */
  get path(): string {
    return join(this.dir, 'modem');
  }

  private get emuPath(): string {
    return join(this.dir, 'emu');
  }

  /** socat's own link to the driver's end; `path` is made to point at the same pty once the emulator listens. */
  private get ptyPath(): string {
    return join(this.dir, 'modem.pty');
  }

  async start(): Promise<{ path: string }> {
    if (this.running) return { path: this.path };
    await this.plugIn();
    this.running = true;
    return { path: this.path };
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopSpeaking();
    for (const t of this.ringTimers.values()) clearInterval(t);
    this.ringTimers.clear();
    await this.pullOut();
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * The device node disappears while the modem itself stays (what a udev
   * rule change or a hub's re-enumeration can do): the driver's open fd
   * still works, only the path is gone. restoreNode() brings it back.
   */
  removeNode(): void {
    rmSync(this.path, { force: true });
  }

  restoreNode(): void {
    if (!existsSync(this.path)) symlinkSync(readlinkSync(this.ptyPath), this.path);
  }

  /** The USB cable is pulled: the driver's port hangs up (end of file) and the path disappears. Calls are lost. */
  async unplug(): Promise<void> {
    this.stopSpeaking();
    for (const t of this.ringTimers.values()) clearInterval(t);
    this.ringTimers.clear();
    this.calls = [];
    await this.pullOut();
  }

  /** Plugged back in: the same path appears again; the modem has rebooted (settings reset). */
  async replug(): Promise<void> {
    this.settings = defaultSettings();
    await this.plugIn();
  }

  /** The modem restarts by itself: calls gone, settings reset, then the boot lines. */
  async reboot(bootDelayMs = 50): Promise<void> {
    this.stopSpeaking();
    for (const t of this.ringTimers.values()) clearInterval(t);
    this.ringTimers.clear();
    this.calls = [];
    this.settings = defaultSettings();
    this.promptHandler = null;
    this.booting = true; // deaf while it boots, like the real thing
    await sleep(bootDelayMs);
    this.booting = false;
    this.input = '';
    this.urc('RDY');
    if (this.vendor === 'sim7600' || this.vendor === 'sim800') {
      this.urc('+CPIN: READY');
      this.urc('SMS DONE');
    }
  }

  private plugIn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const p = spawn(
        'socat',
        ['-d', '-d', `pty,raw,echo=0,link=${this.emuPath}`, `pty,raw,echo=0,link=${this.ptyPath}`],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      this.socat = p;
      let err = '';
      let done = false;
      const finish = (e?: Error) => {
        if (done) return;
        done = true;
        if (e) reject(e);
        else resolve();
      };
      p.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('starting data transfer loop')) {
          // The guarded binding: serialport's own spins on end of file (device/modem/transport.ts).
          const port = new SerialPort({
            path: this.emuPath,
            baudRate: 115200,
            autoOpen: false,
            ...({ binding: guardedBinding() } as object),
          });
          port.open((e) => {
            if (e) {
              finish(e);
              return;
            }
            this.port = port;
            port.on('data', (d: Buffer) => this.onInput(d));
            port.on('error', () => {});
            port.on('close', () => {
              if (this.port === port) this.port = null;
            });
            // Like udev, the name appears once the device is there: a driver that opens it at once is heard.
            try {
              rmSync(this.path, { force: true });
              symlinkSync(readlinkSync(this.ptyPath), this.path);
            } catch (e) {
              finish(e as Error);
              return;
            }
            finish();
          });
        }
      });
      p.once('exit', (code) => finish(new Error(`socat exited (${code}): ${err.slice(-300)}`)));
      p.once('error', (e) => finish(e));
    });
  }

  private async pullOut(): Promise<void> {
    rmSync(this.path, { force: true }); // the node goes with the device
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
    const p = this.socat;
    this.socat = null;
    if (p && p.exitCode === null) {
      await new Promise<void>((r) => {
        p.once('exit', () => r());
        p.kill('SIGTERM');
      });
    }
    // socat removes its links on exit; make sure a stale one does not linger.
    for (const f of [this.path, this.emuPath, this.ptyPath]) rmSync(f, { force: true });
  }

  // ------------------------------------------------------------ behaviours

  prepend(b: EmulatorBehavior): void {
    this.behaviors.unshift(b);
  }

  removeBehavior(b: EmulatorBehavior): void {
    this.behaviors = this.behaviors.filter((x) => x !== b);
  }

  /** The reply the behaviours after `b` would give (for wrappers such as slow()). */
  answerAfter(cmd: string, b: EmulatorBehavior): Reply {
    const i = this.behaviors.indexOf(b);
    return this.answer(cmd, i + 1);
  }

  private answer(cmd: string, from = 0): Reply {
    for (let i = from; i < this.behaviors.length; i++) {
      const r = (this.behaviors[i] as EmulatorBehavior).onCommand(cmd, this);
      if (r) return r;
    }
    return { final: 'ERROR' };
  }

  resetSettings(): void {
    this.settings = defaultSettings();
  }

  // ------------------------------------------------------------ line I/O

  private write(s: string): void {
    const port = this.port;
    if (port?.isOpen) port.write(Buffer.from(s, 'utf8'));
  }

  /** An unsolicited line, framed <CR><LF>line<CR><LF>. */
  urc(line: string): void {
    this.write(`\r\n${line}\r\n`);
  }

  injectGarbage(bytes: Buffer = randomBytes(64)): void {
    this.port?.write(bytes);
  }

  private onInput(d: Buffer): void {
    if (this.booting) return;
    this.input += d.toString('utf8');
    if (this.input.length > 100_000) this.input = '';
    for (;;) {
      if (this.promptHandler) {
        const z1 = this.input.indexOf('\x1a');
        const z2 = this.input.indexOf('\x1b');
        const z = z1 < 0 ? z2 : z2 < 0 ? z1 : Math.min(z1, z2);
        if (z < 0) return;
        const body = this.input.slice(0, z);
        const cancelled = this.input[z] === '\x1b';
        this.input = this.input.slice(z + 1);
        const h = this.promptHandler;
        this.promptHandler = null;
        if (!cancelled) this.enqueue(() => this.reply(h(body)));
        else this.enqueue(async () => this.write('\r\nOK\r\n'));
        continue;
      }
      const cr = this.input.indexOf('\r');
      if (cr < 0) return;
      const raw = this.input.slice(0, cr);
      this.input = this.input.slice(cr + 1).replace(/^\n/, '');
      const line = raw.trim();
      if (this.settings.echo) this.write(`${raw}\r`);
      if (!/^AT/i.test(line)) continue; // modems ignore lines that do not start with AT
      this.commands.push(line);
      this.emit('command', line);
      this.enqueue(() => this.reply(this.answer(line)));
    }
  }

  private enqueue(job: () => Promise<void>): void {
    this.work = this.work.then(job).catch(() => {});
  }

  private async reply(r: Reply): Promise<void> {
    const delay = (r.delayMs ?? 0) + this.replyDelayMs;
    if (delay > 0) await sleep(delay);
    let out = '';
    const lines = r.lines ?? [];
    lines.forEach((l, i) => {
      out += `\r\n${l}\r\n`;
      // Huawei E-series: signal reports land in the middle of other replies.
      if (this.vendor === 'huawei' && i === 0) out += `\r\n^RSSI: ${this.net.csq}\r\n`;
    });
    if (r.prompt) {
      this.promptHandler = r.prompt;
      out += '\r\n> ';
    }
    const final = r.final === undefined ? 'OK' : r.final;
    if (final !== null) out += `\r\n${final}\r\n`;
    this.write(out);
    r.after?.();
  }

  // ------------------------------------------------------------ calls

  private nextIndex(): number {
    let i = 1;
    while (this.calls.some((c) => c.index === i)) i++;
    return i;
  }

  /** A call comes in; RINGs every ringIntervalMs until answered or hung up. Returns its index. */
  incomingCall(number: string | null, opts: { validity?: 0 | 1 | 2 } = {}): number {
    const index = this.nextIndex();
    const busy = this.calls.some((c) => c.stat === 'active' || c.stat === 'held');
    const call: EmuCall = { index, direction: 'mt', stat: busy ? 'waiting' : 'incoming', number };
    this.calls.push(call);
    const validity = opts.validity ?? (number === null ? 1 : 0);
    const clip =
      number === null ? `"",128,,,,${validity}` : `"${number}",${number.startsWith('+') ? 145 : 129},,,,${validity}`;
    this.pushCallState(call);
    if (busy) {
      this.urc(`+CCWA: ${number === null ? '""' : `"${number}"`},${number?.startsWith('+') ? 145 : 129},1`);
      return index;
    }
    const ring = () => {
      this.urc(this.settings.crc ? '+CRING: VOICE' : 'RING');
      if (this.settings.clip) this.urc(`+CLIP: ${clip}`);
    };
    ring();
    this.ringTimers.set(index, setInterval(ring, this.ringIntervalMs));
    return index;
  }

  /** The remote party hangs up (the first call, or the one with this index). */
  callerHangsUp(index?: number): void {
    const c = index === undefined ? this.calls[0] : this.calls.find((x) => x.index === index);
    if (!c) return;
    this.endCalls((x) => x === c, 'remote');
  }

  setCallStat(c: EmuCall, stat: CallStat): void {
    c.stat = stat;
    const t = this.ringTimers.get(c.index);
    if (t && stat !== 'incoming') {
      clearInterval(t);
      this.ringTimers.delete(c.index);
    }
    if (stat === 'active' && this.vendor === 'sim7600') this.urc('VOICE CALL: BEGIN');
    this.pushCallState(c);
  }

  /** End matching calls with the vendor's end lines. */
  /** Start speaking (replacing what plays); the done URC follows after ttsMsPerChar per character. */
  startSpeaking(command: SpokenText['command'], text: string): void {
    const remote = command === 'AT+QTTS' || this.settings.cdtam === 1;
    this.stopSpeaking();
    this.spoken.push({ text, command, remote });
    this.emit('tts', { text, command, remote });
    this.ttsTimer = setTimeout(() => {
      this.ttsTimer = null;
      this.urc(`+${command.slice(3)}: 0`);
    }, text.length * this.ttsMsPerChar);
  }

  /** Stop speaking without the done URC; returns whether something was playing. */
  stopSpeaking(): boolean {
    if (!this.ttsTimer) return false;
    clearTimeout(this.ttsTimer);
    this.ttsTimer = null;
    return true;
  }

  endCalls(pred: (c: EmuCall) => boolean, by: 'local' | 'remote'): void {
    const ending = this.calls.filter(pred);
    this.calls = this.calls.filter((c) => !pred(c));
    if (ending.some((c) => c.stat === 'active') && !this.calls.some((c) => c.stat === 'active')) this.stopSpeaking();
    for (const c of ending) {
      const t = this.ringTimers.get(c.index);
      if (t) clearInterval(t);
      this.ringTimers.delete(c.index);
      const wasActive = c.stat === 'active' || c.stat === 'held';
      this.pushCallState(c, true);
      if (by === 'local') continue; // the box hung up: OK is the answer, no end line
      switch (this.vendor) {
        case 'sim7600':
          if (wasActive) {
            this.urc('VOICE CALL: END: 000012');
            this.urc('NO CARRIER');
          } else this.urc(`MISSED_CALL: 10:15AM ${c.number ?? ''}`.trim());
          break;
        case 'huawei':
          this.urc(`^CEND:${c.index},0,104,16`);
          if (wasActive) this.urc('NO CARRIER');
          break;
        default:
          // 3GPP: an unanswered call just stops ringing; an active one ends with NO CARRIER.
          if (wasActive) this.urc('NO CARRIER');
      }
    }
  }

  private pushCallState(c: EmuCall, ended = false): void {
    if (this.vendor === 'sim7600' && this.settings.clccPush) {
      this.urc(ended ? clccLine({ ...c }).replace(/^(\+CLCC: \d+,\d+,)\d+/, '$16') : clccLine(c));
    }
    if (this.vendor === 'ec25' && this.settings.qindCcinfo) {
      const line = clccLine(c, '+QIND: "ccinfo",');
      this.urc(ended ? line.replace(/^(\+QIND: "ccinfo",\d+,\d+,)\d+/, '$16') : line);
    }
  }

  // ------------------------------------------------------------ SMS

  nextMr(): number {
    this.mr = (this.mr + 1) & 0xff;
    return this.mr;
  }

  recordSent(to: string, text: string, parts: number): void {
    const s = { to, text, parts };
    this.smsSent.push(s);
    this.emit('sms-sent', s);
  }

  recordSentPart(to: string, text: string, concat: Concat | null): void {
    if (!concat) {
      this.recordSent(to, text, 1);
      return;
    }
    const key = `${to}/${concat.ref}`;
    const parts = this.parts.get(key) ?? new Array<string>(concat.total).fill('');
    parts[concat.seq - 1] = text;
    this.parts.set(key, parts);
    const have = parts.filter((p) => p !== '').length;
    if (have === concat.total) {
      this.parts.delete(key);
      this.recordSent(to, parts.join(''), concat.total);
    }
  }

  /**
   * An SMS arrives: each part is stored on the "SIM" at the lowest free index
   * and announced with +CMTI if AT+CNMI asked for it (after a power-up it has
   * not: those messages wait to be listed). A long text arrives as
   * concatenated parts (`deliverParts` limits how many are delivered, to test
   * a missing part). With the SIM full, parts wait at the network and come
   * when AT+CMGD frees a place. Returns the index of the first part, or null
   * when it is waiting at the network.
   */
  receiveSms(from: string, text: string, at = new Date(), opts: { deliverParts?: number } = {}): number | null {
    const p2 = (n: number) => String(n).padStart(2, '0');
    const scts = `${p2(at.getUTCFullYear() % 100)}/${p2(at.getUTCMonth() + 1)}/${p2(at.getUTCDate())},${p2(at.getUTCHours())}:${p2(at.getUTCMinutes())}:${p2(at.getUTCSeconds())}+00`;
    const parts = splitText(text);
    this.smsRef = (this.smsRef + 1) & 0xff;
    const ref = this.smsRef;
    let first: number | null = null;
    parts.slice(0, opts.deliverParts ?? parts.length).forEach((part, i) => {
      const concat = parts.length > 1 ? { ref, total: parts.length, seq: i + 1 } : undefined;
      const index = this.storeSms({ from, text: part, pdu: encodeDeliver(from, part, at, concat), scts });
      if (i === 0) first = index;
    });
    return first;
  }

  private freeSmsIndex(): number | null {
    for (let i = 1; i <= this.smsCapacity; i++) if (!this.smsStore.has(i)) return i;
    return null;
  }

  /** A new part: after those the network already holds (in order), or on the SIM if there is a place. */
  private storeSms(sms: Omit<StoredSms, 'stat' | 'reads'>): number | null {
    const index = this.smsAtNetwork.length === 0 ? this.freeSmsIndex() : null;
    if (index === null) {
      this.smsAtNetwork.push(sms);
      return null;
    }
    return this.placeSms(index, sms);
  }

  private placeSms(index: number, sms: Omit<StoredSms, 'stat' | 'reads'>): number {
    this.smsStore.set(index, { ...sms, stat: 0, reads: 0 });
    this.emit('sms-stored', { index, from: sms.from, text: sms.text });
    if (this.settings.cnmiMt >= 1) this.urc(`+CMTI: "SM",${index}`);
    return index;
  }

  /** AT+CMGD: the place is free; the network delivers what it held back (as an SMSC retry would). */
  deleteStoredSms(pred: (index: number, sms: StoredSms) => boolean): void {
    for (const [i, sms] of [...this.smsStore]) {
      if (!pred(i, sms)) continue;
      this.smsStore.delete(i);
      this.emit('sms-deleted', i, sms);
    }
    setTimeout(() => {
      for (let free = this.freeSmsIndex(); free !== null && this.smsAtNetwork.length > 0; free = this.freeSmsIndex()) {
        this.placeSms(free, this.smsAtNetwork.shift() as Omit<StoredSms, 'stat' | 'reads'>);
      }
    }, 20);
  }

  packUssd(text: string): string {
    return packSeptets(toGsm7(text) ?? [])
      .toString('hex')
      .toUpperCase();
  }

  unpackUssd(hex: string): string {
    if (!/^([0-9A-Fa-f]{2})+$/.test(hex)) return hex;
    const b = Buffer.from(hex, 'hex');
    return fromGsm7(unpackSeptets(b, Math.floor((b.length * 8) / 7))).replace(/\r$/, '');
  }

  // ------------------------------------------------------------ network

  networkLoss(stat: 0 | 2 | 3 = 2): void {
    this.net.stat = stat;
    this.net.csq = 99;
    if (this.settings.creg > 0) this.urc(`+CREG: ${stat}`);
  }

  networkRestore(): void {
    this.net.stat = 1;
    this.net.csq = 20;
    if (this.settings.creg === 1) this.urc('+CREG: 1');
    if (this.settings.creg === 2) this.urc(`+CREG: 1,"${this.net.lac}","${this.net.cellId}"`);
  }

  setSignal(csq: number): void {
    this.net.csq = csq;
    if (this.vendor === 'huawei') this.urc(`^RSSI: ${csq}`);
  }

  // ------------------------------------------------------------ test helpers

  waitForCommand(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('command', on);
        reject(new Error(`emulator saw no command matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (line: string) => {
        if (pattern.test(line)) {
          clearTimeout(t);
          this.off('command', on);
          resolve(line);
        }
      };
      this.on('command', on);
    });
  }

  async waitUntil(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`emulator: ${what} not met within ${timeoutMs} ms`);
      await sleep(10);
    }
  }
}
