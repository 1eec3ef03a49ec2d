import { describe, expect, it } from 'vitest';
import { type Frame, LineFramer } from './lines.js';

function frames(chunks: (string | Buffer)[], expectPrompt = false): Frame[] {
  const out: Frame[] = [];
  const f = new LineFramer((x) => out.push(x));
  f.expectPrompt = expectPrompt;
  for (const c of chunks) f.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return out;
}

const lines = (fs: Frame[]) =>
  fs.map((f) => (f.kind === 'line' ? f.text : f.kind === 'prompt' ? '<prompt>' : `<discarded:${f.reason}>`));

describe('LineFramer', () => {
  it('frames V.250 verbose replies, doubled CR and bare LF alike', () => {
    expect(lines(frames(['\r\n+CSQ: 14,99\r\n\r\nOK\r\n']))).toEqual(['+CSQ: 14,99', 'OK']);
    expect(lines(frames(['\r\r\n+CREG: 1\r\r\n\r\r\nOK\r\r\n']))).toEqual(['+CREG: 1', 'OK']);
    expect(lines(frames(['RING\n\n+CLIP: "+15551234567",145\n']))).toEqual(['RING', '+CLIP: "+15551234567",145']);
  });

  it('keeps the echo as a line of its own (the channel drops it)', () => {
    expect(lines(frames(['AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n']))).toEqual(['AT+CSQ', '+CSQ: 20,99', 'OK']);
  });

  it('joins partial lines split across reads, byte by byte', () => {
    const text = '\r\n+CLCC: 1,1,4,0,0,"+15551234567",145\r\n\r\nOK\r\n';
    expect(lines(frames([...text]))).toEqual(['+CLCC: 1,1,4,0,0,"+15551234567",145', 'OK']);
  });

  it('recognises the "> " prompt with no line end only when one is expected', () => {
    expect(lines(frames(['\r\n> '], true))).toEqual(['<prompt>']);
    expect(lines(frames(['\r\n', '>', ' '], true))).toEqual(['<prompt>']);
    // Not expected: it stays pending (it is no line yet).
    expect(lines(frames(['\r\n> ']))).toEqual([]);
  });

  it('passes garbage on as discarded frames and counts it', () => {
    const out: Frame[] = [];
    const f = new LineFramer((x) => out.push(x));
    f.push(Buffer.from([0x00, 0xff, 0x13, 0x0d, 0x0a]));
    f.push(Buffer.from('\r\nOK\r\n'));
    f.push(Buffer.from([0xc3, 0x28, 0x0d])); // invalid UTF-8
    expect(lines(out)).toEqual(['<discarded:control-bytes>', 'OK', '<discarded:invalid-utf8>']);
    expect(f.stats.discarded).toBe(2);
    expect(f.stats.discardedBytes).toBe(5);
  });

  it('decodes UTF-8 text lines', () => {
    expect(lines(frames(['+CUSD: 0,"Grüße",15\r\n']))).toEqual(['+CUSD: 0,"Grüße",15']);
  });

  it('bounds pending input: an endless line is discarded as too long', () => {
    const out: Frame[] = [];
    const f = new LineFramer((x) => out.push(x), 256);
    for (let i = 0; i < 100; i++) f.push(Buffer.alloc(100, 0x41));
    expect(f.pendingBytes).toBeLessThanOrEqual(256);
    expect(out.every((x) => x.kind === 'discarded' && x.reason === 'too-long')).toBe(true);
    f.push(Buffer.from('\r\nOK\r\n'));
    expect(lines(out).at(-1)).toBe('OK');
  });

  it('survives a listener that throws', () => {
    const f = new LineFramer(() => {
      throw new Error('bug');
    });
    expect(() => f.push(Buffer.from('OK\r\nERROR\r\n'))).not.toThrow();
    expect(f.stats.lines).toBe(2);
  });
});
