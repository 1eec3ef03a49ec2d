/**
 * Seeded fuzzing of the AT channel (device/modem/at/channel.ts) with a
 * command in flight while the noise arrives: random bytes in random chunks,
 * then lines made of the protocol's own words (finals, URC prefixes, quotes,
 * prompts, Ctrl-Z). Whatever comes, the command in flight settles within its
 * timeout, either with lines it claims by prefix (never a URC's line) or with
 * a clean ModemTimeout / ModemCommandFailed; memory stays bounded; and the
 * next command gets exactly its own answer.
 *
 * The seed is printed with any failure; CALLBOX_FUZZ_SEED=<n> replays it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AtChannel, type CommandResult, type CommandSpec, Priority } from '../device/modem/at/channel.js';
import { matchUrc, type Urc } from '../device/modem/at/urc.js';
import { ErrorCode, isCallboxError } from '../shared/errors.js';
import { fuzzSeed, SeededRandom, withSeed } from './helpers/property.js';

const TIMEOUT_MS = 1000;

function harness() {
  const urcs: { line: string; urc: Urc }[] = [];
  const written: string[] = [];
  /** When set, commands written are answered like a plain modem. */
  let answering = false;
  const ch = new AtChannel(
    {
      onUrc: (line) => {
        const u = matchUrc(line);
        if (u) urcs.push({ line, urc: u });
        return u !== null;
      },
      onDiscard: () => {},
      onTimeout: () => {},
    },
    { quietMs: 100, timeoutMs: TIMEOUT_MS },
  );
  ch.attach(async (d) => {
    const cmd = d.toString('latin1').replace(/\r$/, '');
    written.push(cmd);
    if (!answering) return;
    const reply = cmd === 'AT' ? '\r\nOK\r\n' : cmd === 'AT+CREG?' ? '\r\n+CREG: 0,1\r\n\r\nOK\r\n' : '\r\nERROR\r\n';
    queueMicrotask(() => ch.feed(Buffer.from(reply)));
  });
  return {
    ch,
    urcs,
    written,
    answer: (on: boolean) => {
      answering = on;
    },
  };
}

/** The commands put in flight during the noise: plain, claimed-by-prefix, bare-line and prompt-and-body. */
const IN_FLIGHT: (Partial<CommandSpec> & { command: string; answer: string })[] = [
  { command: 'AT+CSQ', prefixes: ['+CSQ:'], answer: '\r\n+CSQ: 20,99\r\n\r\nOK\r\n' },
  { command: 'AT+CLCC', prefixes: ['+CLCC:'], answer: '\r\n+CLCC: 1,1,4,0,0,"+15551234567",145\r\n\r\nOK\r\n' },
  { command: 'AT+CGMI', anyLine: true, answer: '\r\nSIMCOM INCORPORATED\r\n\r\nOK\r\n' },
  {
    command: 'AT+CMGS="+15551234567"',
    prefixes: ['+CMGS:'],
    body: 'hello',
    answer: '\r\n> \r\n+CMGS: 12\r\n\r\nOK\r\n',
  },
];

/** The shape of an extended result code or URC ("+CMTI:", "^CEND:"). */
const EXTENDED = /^[+^][A-Za-z0-9_]+:/;

/**
 * Put `spec` in flight, feed `noise` (in the chunks given), then its real answer; check that it
 * settles cleanly within its timeout and that its lines are its own. Returns how it ended.
 */
async function commandThroughNoise(
  h: ReturnType<typeof harness>,
  spec: (typeof IN_FLIGHT)[number],
  chunks: Buffer[],
): Promise<'answered' | 'failed'> {
  const { answer, ...rest } = spec;
  const settled: { o: { ok: true; r: CommandResult } | { ok: false; e: unknown } | null } = { o: null };
  h.ch
    .run({ timeoutMs: TIMEOUT_MS, priority: Priority.Normal, ...rest })
    .then((r) => {
      settled.o = { ok: true, r };
    })
    .catch((e: unknown) => {
      settled.o = { ok: false, e };
    });
  await vi.advanceTimersByTimeAsync(0);
  for (const c of chunks) h.ch.feed(c);
  h.ch.feed(Buffer.from(`\r\n${answer}`));
  // Within the command's timeout plus a resync (its own timeout and the quiet spell), it has settled.
  await vi.advanceTimersByTimeAsync(TIMEOUT_MS * 2 + 200);
  const o = settled.o;
  expect(o, `${spec.command} never settled`).not.toBeNull();
  if (o === null) return 'failed';
  if (o.ok) {
    for (const line of o.r.lines) {
      // Its own lines (claimed by its prefix, as +CLCC: for AT+CLCC) aside, no URC's line is in its answer.
      if (!spec.prefixes?.some((p) => line.startsWith(p)))
        expect(matchUrc(line), `${spec.command} got the URC line ${JSON.stringify(line)}`).toBeNull();
      if (spec.prefixes)
        expect(
          spec.prefixes.some((p) => line.startsWith(p)),
          `${spec.command} got ${JSON.stringify(line)}`,
        ).toBe(true);
      // A bare-line answer is never shaped like a result code or URC, well formed or not.
      if (spec.anyLine) expect(EXTENDED.test(line), `${spec.command} got ${JSON.stringify(line)}`).toBe(false);
    }
    return 'answered';
  }
  const e = o.e;
  expect(
    isCallboxError(e, ErrorCode.ModemTimeout) || isCallboxError(e, ErrorCode.ModemCommandFailed),
    `${spec.command} failed unclearly: ${String(e)}`,
  ).toBe(true);
  return 'failed';
}

/** After the noise, a plain command gets exactly its own answer (a resync first when one is due). */
async function nextCommandWorks(h: ReturnType<typeof harness>): Promise<void> {
  h.ch.feed(Buffer.from('\r\n')); // end whatever partial line the noise left
  h.answer(true);
  const p = h.ch.run({ command: 'AT+CREG?', prefixes: ['+CREG:'], timeoutMs: TIMEOUT_MS, priority: Priority.Normal });
  await vi.advanceTimersByTimeAsync(TIMEOUT_MS * 3);
  expect((await p).lines).toEqual(['+CREG: 0,1']);
  h.answer(false);
}

describe('AtChannel fuzz (seeded; CALLBOX_FUZZ_SEED replays)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('1,000,000 random bytes in random chunks, a command in flight through each burst', async () => {
    await withSeed(fuzzSeed(), async (seed) => {
      const rnd = new SeededRandom(seed);
      const h = harness();
      let maxPending = 0;
      const outcomes = { answered: 0, failed: 0 };
      for (let round = 0; round < 20; round++) {
        const noise = rnd.bytes(50_000);
        const chunks: Buffer[] = [];
        for (let i = 0; i < noise.length; ) {
          const n = 1 + rnd.int(2000);
          chunks.push(noise.subarray(i, i + n));
          i += n;
        }
        const spec = rnd.pick(IN_FLIGHT);
        outcomes[await commandThroughNoise(h, spec, chunks)]++;
        maxPending = Math.max(maxPending, h.ch.framer.pendingBytes);
        await nextCommandWorks(h);
      }
      expect(maxPending).toBeLessThanOrEqual(h.ch.framer.maxLineBytes);
      expect(h.ch.framer.stats.discarded).toBeGreaterThan(0);
      expect(outcomes.answered + outcomes.failed).toBe(20);
    });
  });

  it('10,000 lines of protocol words (finals, URC prefixes, prompts, Ctrl-Z), a command in flight through each burst', async () => {
    await withSeed(fuzzSeed(), async (seed) => {
      const rnd = new SeededRandom(seed);
      const h = harness();
      const words = [
        'OK',
        'ERROR',
        'RING',
        '+CLIP:',
        '+CLCC: 1,1',
        '+CREG:',
        '+CMTI: "SM",',
        'NO CARRIER',
        '"',
        ',',
        '> ',
        '\x1a',
        '+CME ERROR:',
        '+CMS ERROR:',
        '+CUSD: 0,"',
        '+CSQ: ',
        '+CMGS: ',
        'CONNECT',
        'BUSY',
      ];
      const outcomes = { answered: 0, failed: 0 };
      for (let round = 0; round < 20; round++) {
        let text = '';
        for (let i = 0; i < 500; i++) {
          const n = 1 + rnd.int(5);
          let line = '';
          for (let k = 0; k < n; k++) line += rnd.pick(words) + (rnd.next() < 0.5 ? String(rnd.int(100)) : '');
          text += `${rnd.pick(['\r\n', '\r', '\n', '\r\n\r\n'])}${line}\r\n`;
        }
        const wire = Buffer.from(text, 'latin1');
        const chunks: Buffer[] = [];
        for (let i = 0; i < wire.length; ) {
          const n = 1 + rnd.int(64);
          chunks.push(wire.subarray(i, i + n));
          i += n;
        }
        const before = h.urcs.length;
        outcomes[await commandThroughNoise(h, rnd.pick(IN_FLIGHT), chunks)]++;
        // The noise's URCs were still reported as URCs while the command was in flight.
        expect(h.urcs.length).toBeGreaterThan(before);
        await nextCommandWorks(h);
      }
      expect(outcomes.answered + outcomes.failed).toBe(20);
    });
  });
});
