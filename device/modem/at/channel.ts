/**
 * The AT command channel: one command in flight, a priority queue, a
 * timeout per command, and the routing of every received line.
 *
 * A received line goes, in this order, to:
 *   1. the echo of the command in flight (E1 modems) — dropped;
 *   2. a final result (results.ts) — ends the command in flight; NO CARRIER
 *      and friends end it only if it is a dial/answer command, otherwise
 *      they are unsolicited;
 *   3. the command in flight, if the line has one of its expected prefixes
 *      (oFono's rule: a reply is claimed by prefix, nothing else);
 *   4. the URC table (urc.ts) through `onUrc`;
 *   5. the command in flight if it takes bare lines (AT+CGMI), unless the
 *      line has the shape of an extended result code ("+XXX:", "^XXX:"): a
 *      malformed URC ("+CMTI: "SM",-1") is nobody's answer;
 *   6. otherwise it is discarded and counted.
 * So a RING or +CLIP arriving inside an AT+CSQ reply is a call event, and
 * the +CSQ: line still belongs to AT+CSQ.
 *
 * The waiter is registered before the write and its timer starts after the
 * write has gone out; the caller's stack is kept so that a timeout names the
 * code that asked. After a timeout the next command is preceded by a resync:
 * "AT" until an OK followed by a quiet spell, so that a late reply to the
 * timed-out command cannot be taken as the next one's.
 */
import { CallboxError, describeError, ErrorCode } from '../../../shared/errors.js';
import { getLogger, type Logger } from '../../../shared/log.js';
import { type Frame, LineFramer } from './lines.js';
import { CALL_FINALS, type FinalResult, parseFinal } from './results.js';
import { CTRL_Z, ESC } from './sms.js';

/** Queue levels, most urgent first. Within a level, first come first served. */
export enum Priority {
  /** Answer, hang up, deflect, hold, and the AT+CLCC look after a RING: a caller is on the line; seconds count. */
  CallControl = 0,
  /** SMS: alerts and panic messages must leave soon, but waiting a few seconds behind a call is fine. */
  Sms = 1,
  /** Set-up and on-demand requests (forwarding, USSD, identity): someone asked, nobody is ringing. */
  Normal = 2,
  /** Idle ping and periodic network refresh: only worth the line when nothing else needs it. */
  Poll = 3,
}

export interface CommandSpec {
  /** The command line without CR, e.g. 'AT+CSQ'. */
  command: string;
  /** Reply lines starting with one of these belong to this command ('+CSQ:'). */
  prefixes?: readonly string[];
  /** Lines that are no known URC belong to this command (bare-text replies: AT+CGMI, AT+CGSN). */
  anyLine?: boolean;
  /** After a prefixed line, this many following lines belong to the command whatever they say (AT+CMGR's body). */
  bodyLines?: number;
  /** NO CARRIER, BUSY, NO ANSWER, NO DIALTONE, CONNECT end this command (ATA, ATD). */
  callFinals?: boolean;
  /** Sent after the "> " prompt, then Ctrl-Z (AT+CMGS). */
  body?: string;
  timeoutMs: number;
  priority: Priority;
}

export interface CommandResult {
  lines: string[];
  final: FinalResult;
}

export interface ChannelStats {
  commands: number;
  timeouts: number;
  consecutiveTimeouts: number;
  urcs: number;
  discarded: number;
  strayFinals: number;
  resyncs: number;
  /** Exceptions thrown by a hook (caught: the channel goes on; logged, rate-limited). */
  hookErrors: number;
}

export interface ChannelOptions {
  /** Where a hook's exception is logged (default: the device:modem:at logger). */
  log?: Pick<Logger, 'error'>;
  /**
   * A hook's exception of a kind (hook, error name, message) not seen before is logged at once with
   * its stack; repeats are counted and summed up at most once per this many ms per hook (default 60 s).
   */
  hookErrorLogEveryMs?: number;
}

/** Kinds of hook error remembered (a message that varies with each line must not grow the map forever). */
const MAX_HOOK_ERROR_KINDS = 64;

export interface ChannelHooks {
  /** Try a line as a URC; true when it was one (handled). Should not throw (exceptions are caught and logged). */
  onUrc(line: string): boolean;
  /** A line or bytes nobody claimed. */
  onDiscard(text: string, reason: string): void;
  /** A command timed out; `consecutive` counts timeouts in a row. */
  onTimeout(command: string, consecutive: number): void;
  /** Debug tracing (tx/rx). */
  trace?(dir: 'tx' | 'rx', text: string): void;
}

interface Entry {
  spec: CommandSpec;
  seq: number;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  callerStack: string;
  lines: string[];
  bodyLeft: number;
  timer: ReturnType<typeof setTimeout> | null;
  written: boolean;
  resync: boolean;
  gotOk: boolean;
}

export type Writer = (data: Buffer) => Promise<void>;

const MAX_QUEUE = 256;

/** "+NAME:" / "^NAME:" (V.250 5.7.2 extended syntax, and vendors' ^ codes): never a bare-line answer. */
const EXTENDED_RESULT = /^[+^][A-Za-z0-9_]+:/;

export class AtChannel {
  readonly stats: ChannelStats = {
    commands: 0,
    timeouts: 0,
    consecutiveTimeouts: 0,
    urcs: 0,
    discarded: 0,
    strayFinals: 0,
    resyncs: 0,
    hookErrors: 0,
  };
  readonly framer: LineFramer;
  /** Time (Date.now()) the last command ended or the last line arrived. */
  lastActivity = Date.now();
  private queue: Entry[] = [];
  private current: Entry | null = null;
  private writer: Writer | null = null;
  private closedReason: CallboxError | null = new CallboxError(ErrorCode.ModemNotReady, 'modem port is not open');
  private seq = 0;
  private needResync = false;
  private readonly hookLog: Pick<Logger, 'error'>;
  private readonly hookErrorLogEveryMs: number;
  private readonly hookErrorKinds = new Set<string>();
  /** Per hook: errors not logged since the last line about it, and when that line was. */
  private readonly hookErrorQuiet = new Map<string, { unlogged: number; loggedAt: number }>();

  constructor(
    private readonly hooks: ChannelHooks,
    private readonly resync: { quietMs: number; timeoutMs: number },
    opts: ChannelOptions = {},
  ) {
    this.framer = new LineFramer((f) => this.onFrame(f));
    this.hookLog = opts.log ?? getLogger('device:modem:at');
    this.hookErrorLogEveryMs = opts.hookErrorLogEveryMs ?? 60_000;
  }

  /** Connect to an open port; queued commands start. */
  attach(writer: Writer): void {
    this.writer = writer;
    this.closedReason = null;
    this.needResync = false;
    this.stats.consecutiveTimeouts = 0;
    this.framer.reset();
    this.pump();
  }

  /** The port is gone or being closed: every pending command fails with `err`, new ones fail at once. */
  detach(err: CallboxError): void {
    this.writer = null;
    this.closedReason = err;
    const all = this.current ? [this.current, ...this.queue] : [...this.queue];
    this.current = null;
    this.queue = [];
    for (const e of all) this.fail(e, err);
  }

  /** Fail everything queued or in flight (soft reset) but stay attached. */
  flush(err: CallboxError): void {
    const all = this.current ? [this.current, ...this.queue] : [...this.queue];
    this.current = null;
    this.queue = [];
    for (const e of all) this.fail(e, err);
  }

  get busy(): boolean {
    return this.current !== null || this.queue.length > 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  feed(chunk: Buffer): void {
    this.lastActivity = Date.now();
    this.framer.push(chunk);
  }

  run(spec: CommandSpec): Promise<CommandResult> {
    const callerStack = new Error().stack ?? '';
    return new Promise<CommandResult>((resolve, reject) => {
      if (this.closedReason) {
        reject(
          new CallboxError(this.closedReason.code, `${spec.command}: ${this.closedReason.message}`, {
            command: spec.command,
          }),
        );
        return;
      }
      if (/[\r\n]/.test(spec.command)) {
        reject(
          new CallboxError(ErrorCode.ValidationFailed, `command ${JSON.stringify(spec.command)} contains a line end`),
        );
        return;
      }
      if (this.queue.length >= MAX_QUEUE) {
        reject(
          new CallboxError(ErrorCode.ModemNotReady, `${spec.command}: modem queue is full (${MAX_QUEUE} waiting)`, {
            command: spec.command,
          }),
        );
        return;
      }
      const entry: Entry = {
        spec,
        seq: ++this.seq,
        resolve,
        reject,
        callerStack,
        lines: [],
        bodyLeft: 0,
        timer: null,
        written: false,
        resync: false,
        gotOk: false,
      };
      // Insert after the last entry of the same or more urgent priority.
      let at = this.queue.length;
      while (at > 0 && (this.queue[at - 1] as Entry).spec.priority > spec.priority) at--;
      this.queue.splice(at, 0, entry);
      this.pump();
    });
  }

  private pump(): void {
    if (this.current || !this.writer) return;
    let next: Entry | undefined;
    if (this.needResync) {
      this.needResync = false;
      this.stats.resyncs++;
      next = {
        spec: { command: 'AT', timeoutMs: this.resync.timeoutMs, priority: Priority.CallControl },
        seq: ++this.seq,
        resolve: () => {},
        reject: () => {},
        callerStack: '',
        lines: [],
        bodyLeft: 0,
        timer: null,
        written: false,
        resync: true,
        gotOk: false,
      };
    } else next = this.queue.shift();
    if (!next) return;
    const entry = next;
    this.current = entry; // the waiter exists before anything is written
    if (!entry.resync) this.stats.commands++;
    const writer = this.writer;
    this.framer.expectPrompt = entry.spec.body !== undefined;
    this.trace('tx', entry.spec.command);
    writer(Buffer.from(`${entry.spec.command}\r`, 'latin1')).then(
      () => {
        if (this.current !== entry) return;
        entry.written = true;
        this.arm(entry, entry.spec.timeoutMs); // the timer starts once the bytes are out
      },
      (err: unknown) => {
        if (this.current !== entry) return;
        this.current = null;
        this.fail(
          entry,
          new CallboxError(
            ErrorCode.ModemDisconnected,
            `${entry.spec.command}: write failed`,
            { command: entry.spec.command },
            { cause: err },
          ),
        );
        this.pump();
      },
    );
  }

  private arm(entry: Entry, ms: number): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.onTimer(entry), ms);
  }

  private onTimer(entry: Entry): void {
    if (this.current !== entry) return;
    this.current = null;
    entry.timer = null;
    if (entry.resync && entry.gotOk) {
      // Quiet after the OK: stale replies are drained.
      this.consumeOk();
      this.pump();
      return;
    }
    this.stats.timeouts++;
    this.stats.consecutiveTimeouts++;
    this.framer.expectPrompt = false;
    // A modem still waiting for message text would take the next commands as text: ESC cancels (27.005 3.5.1).
    if (entry.spec.body !== undefined) this.writer?.(Buffer.from(ESC)).catch(() => {});
    if (!entry.resync) {
      this.needResync = true;
      const err = new CallboxError(
        ErrorCode.ModemTimeout,
        `${entry.spec.command} got no final result within ${entry.spec.timeoutMs} ms`,
        { command: entry.spec.command, timeoutMs: entry.spec.timeoutMs, partial: entry.lines.length },
      );
      err.stack = `${err.name}: ${err.message}\n    --- asked from ---\n${entry.callerStack.split('\n').slice(2).join('\n')}`;
      this.fail(entry, err);
    }
    // A failed resync is not retried before the next command: each command still ends within its own timeout.
    this.safe('onTimeout', () => this.hooks.onTimeout(entry.spec.command, this.stats.consecutiveTimeouts));
    this.pump();
  }

  private consumeOk(): void {
    this.stats.consecutiveTimeouts = 0;
    this.lastActivity = Date.now();
  }

  private onFrame(f: Frame): void {
    if (f.kind === 'discarded') {
      this.stats.discarded++;
      this.safe('onDiscard', () => this.hooks.onDiscard(f.text, f.reason));
      return;
    }
    const cur = this.current;
    if (f.kind === 'prompt') {
      if (cur?.spec.body !== undefined && this.writer) {
        this.trace('tx', `<body ${cur.spec.body.length} chars>`);
        this.writer(Buffer.from(`${cur.spec.body}${CTRL_Z}`, 'utf8')).catch(() => {});
      }
      return;
    }
    const line = f.text;
    this.trace('rx', line);
    if (cur && line.toUpperCase() === cur.spec.command.toUpperCase()) return; // echo (E1)
    if (cur && cur.bodyLeft > 0) {
      cur.bodyLeft--;
      cur.lines.push(line);
      return;
    }
    const final = parseFinal(line);
    if (final) {
      const isCallFinal = CALL_FINALS.has(final.kind);
      if (cur?.resync) {
        if (isCallFinal) this.urc(line);
        else {
          // OK (or a stale final) during resync: wait for quiet after it.
          if (final.kind === 'ok') cur.gotOk = true;
          else this.stats.strayFinals++;
          if (cur.gotOk) this.arm(cur, this.resync.quietMs);
        }
        return;
      }
      if (cur && (!isCallFinal || cur.spec.callFinals)) {
        this.finish(cur, final);
        return;
      }
      if (isCallFinal) this.urc(line);
      else {
        this.stats.strayFinals++;
        this.safe('onDiscard', () => this.hooks.onDiscard(line, 'stray-final'));
      }
      return;
    }
    if (cur && !cur.resync && cur.spec.prefixes?.some((p) => line.startsWith(p))) {
      cur.lines.push(line);
      cur.bodyLeft = cur.spec.bodyLines ?? 0;
      if (cur.spec.body !== undefined) this.framer.expectPrompt = false;
      return;
    }
    if (this.urc(line)) return;
    if (cur && !cur.resync && cur.spec.anyLine && !EXTENDED_RESULT.test(line)) {
      cur.lines.push(line);
      return;
    }
    this.stats.discarded++;
    this.safe('onDiscard', () => this.hooks.onDiscard(line, 'unclaimed'));
  }

  private urc(line: string): boolean {
    let handled = false;
    this.safe('onUrc', () => {
      handled = this.hooks.onUrc(line);
    });
    if (handled) this.stats.urcs++;
    return handled;
  }

  private finish(entry: Entry, final: FinalResult): void {
    if (entry.timer) clearTimeout(entry.timer);
    this.current = null;
    this.consumeOk();
    this.framer.expectPrompt = false;
    if (final.kind === 'ok' || final.kind === 'connect') entry.resolve({ lines: entry.lines, final });
    else {
      const err = new CallboxError(ErrorCode.ModemCommandFailed, `${entry.spec.command} failed: ${final.line}`, {
        command: entry.spec.command,
        final: final.kind,
        code: final.code,
        text: final.text,
      });
      entry.reject(err);
    }
    this.pump();
  }

  private fail(entry: Entry, err: Error): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.reject(err);
  }

  private trace(dir: 'tx' | 'rx', text: string): void {
    if (this.hooks.trace) this.safe('trace', () => this.hooks.trace?.(dir, text));
  }

  /** Run a hook: its exception (a bug in the driver) must not wedge the channel, nor go unseen. */
  private safe(hook: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.hookFailed(hook, e);
    }
  }

  /**
   * Log a hook's exception: a new kind (hook, error name, message) at once with its stack; the same
   * kind again, or any kind once MAX_HOOK_ERROR_KINDS are known, only counted and summed up at most
   * once per hookErrorLogEveryMs per hook (a URC handler that throws on every line must not flood).
   */
  private hookFailed(hook: string, e: unknown): void {
    this.stats.hookErrors++;
    try {
      const name = e instanceof Error ? e.name : typeof e;
      const kind = `${hook}|${name}|${describeError(e).slice(0, 200)}`;
      const now = Date.now();
      const quiet = this.hookErrorQuiet.get(hook) ?? { unlogged: 0, loggedAt: 0 };
      this.hookErrorQuiet.set(hook, quiet);
      if (!this.hookErrorKinds.has(kind) && this.hookErrorKinds.size < MAX_HOOK_ERROR_KINDS) {
        this.hookErrorKinds.add(kind);
        quiet.loggedAt = now;
        this.hookLog.error(
          { hook, err: describeError(e), stack: e instanceof Error ? e.stack : undefined },
          `modem channel: the ${hook} hook threw (caught; the channel goes on)`,
        );
        return;
      }
      quiet.unlogged++;
      if (now - quiet.loggedAt >= this.hookErrorLogEveryMs) {
        this.hookLog.error(
          { hook, count: quiet.unlogged, err: describeError(e) },
          `modem channel: the ${hook} hook threw ${quiet.unlogged} more time(s)`,
        );
        quiet.unlogged = 0;
        quiet.loggedAt = now;
      }
    } catch {
      /* the logger itself failed: counted above, nothing more to do */
    }
  }
}
