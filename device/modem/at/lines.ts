/**
 * The AT line framer: bytes in, typed frames out. It never throws and never
 * holds more than `maxLineBytes` of pending input.
 *
 * ITU-T V.250 5.7.1: with verbose results (V1) every response line is framed
 * as <CR><LF>text<CR><LF>. Real modems add to that: an echo of the command
 * ("AT+CSQ<CR>") when E1 is on, doubled <CR><CR><LF>, bare <LF>, and the
 * AT+CMGS prompt "> " (3GPP TS 27.005 3.5.1) that has no line end at all.
 * So any run of CR/LF ends a line, empty lines are skipped, and "> " at the
 * start of an otherwise empty buffer is a prompt when one is expected.
 *
 * Garbage (control bytes, invalid UTF-8, a line longer than the limit) is
 * passed on as a 'discarded' frame and counted, never dropped silently.
 */

export type Frame =
  | { kind: 'line'; text: string }
  | { kind: 'prompt' }
  | { kind: 'discarded'; text: string; reason: 'control-bytes' | 'invalid-utf8' | 'too-long' };

export interface FramerStats {
  lines: number;
  prompts: number;
  discarded: number;
  discardedBytes: number;
}

const CR = 0x0d;
const LF = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Printable text: TAB, and nothing else below 0x20, no DEL. */
function hasControlBytes(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Shown in discarded frames: printable ASCII as is, other bytes as \xNN, cut to 80 chars. */
export function showBytes(b: Buffer): string {
  let out = '';
  for (const c of b.subarray(0, 80)) {
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return b.length > 80 ? `${out}...(${b.length} bytes)` : out;
}

export class LineFramer {
  readonly stats: FramerStats = { lines: 0, prompts: 0, discarded: 0, discardedBytes: 0 };
  /** Set by the channel while AT+CMGS waits for its "> " prompt. */
  expectPrompt = false;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onFrame: (f: Frame) => void,
    readonly maxLineBytes = 4096,
  ) {}

  /** Bytes pending without a line end (for tests of the memory bound). */
  get pendingBytes(): number {
    return this.pending.length;
  }

  push(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let start = 0;
    for (;;) {
      // Skip line ends between lines (\r\n, \r\r\n, \n...).
      while (start < buf.length && (buf[start] === CR || buf[start] === LF)) start++;
      if (start >= buf.length) {
        buf = Buffer.alloc(0);
        start = 0;
        break;
      }
      if (this.expectPrompt && buf[start] === 0x3e /* > */ && buf[start + 1] === 0x20) {
        this.expectPrompt = false;
        this.stats.prompts++;
        this.emit({ kind: 'prompt' });
        start += 2;
        continue;
      }
      let end = start;
      while (end < buf.length && buf[end] !== CR && buf[end] !== LF) end++;
      if (end >= buf.length) break; // partial line: wait for more
      this.line(buf, start, end);
      start = end;
    }
    this.pending = start === 0 ? buf : buf.subarray(start);
    if (this.pending.length > this.maxLineBytes) {
      this.discard(Buffer.from(this.pending), 'too-long');
      this.pending = Buffer.alloc(0);
    } else if (this.pending.length > 0 && this.pending.buffer === chunk.buffer) {
      // Do not pin the caller's (possibly large) chunk in memory.
      this.pending = Buffer.from(this.pending);
    }
  }

  /** Drop partial input (port reopened, modem rebooted). */
  reset(): void {
    this.pending = Buffer.alloc(0);
    this.expectPrompt = false;
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (end - start > this.maxLineBytes) {
      this.discard(buf.subarray(start, end), 'too-long');
      return;
    }
    if (hasControlBytes(buf, start, end)) {
      this.discard(buf.subarray(start, end), 'control-bytes');
      return;
    }
    let text: string;
    try {
      text = utf8.decode(buf.subarray(start, end));
    } catch {
      this.discard(buf.subarray(start, end), 'invalid-utf8');
      return;
    }
    const trimmed = text.trim();
    if (trimmed === '') return;
    this.stats.lines++;
    this.emit({ kind: 'line', text: trimmed });
  }

  private discard(bytes: Buffer, reason: 'control-bytes' | 'invalid-utf8' | 'too-long'): void {
    this.stats.discarded++;
    this.stats.discardedBytes += bytes.length;
    this.emit({ kind: 'discarded', text: showBytes(bytes), reason });
  }

  private emit(f: Frame): void {
    // A listener's bug must not break framing of the next bytes.
    try {
      this.onFrame(f);
    } catch {
      /* the channel logs its own failures */
    }
  }
}
