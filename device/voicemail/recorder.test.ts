import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AlsaCaptureCtor } from '../audio/alsa.js';
import { MemoryEventSink } from '../events.js';
import { VoicemailRecorder } from './recorder.js';
import { VoicemailVault } from './vault.js';

const dir = mkdtempSync(join(tmpdir(), 'callbox-recorder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A capture the test feeds by hand (the real binding is tested on an ALSA file PCM elsewhere). */
class HandCapture extends EventEmitter {
  static last: HandCapture | undefined;
  closed = false;
  constructor() {
    super();
    HandCapture.last = this;
  }
  close(): void {
    this.closed = true;
  }
}

function tone(ms: number): Buffer {
  const b = Buffer.alloc(Math.round(8 * ms) * 2);
  for (let i = 0; i < b.length / 2; i++) b.writeInt16LE(Math.round(8000 * Math.sin(i / 3)), i * 2);
  return b;
}

function recorder(kept: string[] = []) {
  const sink = new MemoryEventSink();
  const r = new VoicemailRecorder({
    capture: HandCapture as unknown as AlsaCaptureCtor,
    device: 'hand',
    rate: 8000,
    vault: new VoicemailVault(join(dir, 'vault')),
    sink,
    kept: (m) => {
      kept.push(m.voicemailId);
    },
  });
  return { r, sink, kept };
}

describe('how a recording ends', () => {
  it('the caller hangs up: endedBy hangup, the unheard list hears of it before the event is committed', async () => {
    const { r, sink, kept } = recorder();
    const rec = r.record(
      { callId: 'c-1', number: '+15550001111' },
      { maxMs: 60_000, silence: { thresholdDbfs: -45, endAfterMs: 4000 } },
    );
    HandCapture.last?.emit('audio', tone(1500));
    rec.stop();
    expect(await rec.ended).toBe('hangup');
    const meta = await rec.done;
    expect(HandCapture.last?.closed).toBe(true);
    expect(kept).toEqual([meta.voicemailId]);
    expect(sink.ofType('voicemail.recorded')[0]).toMatchObject({ endedBy: 'hangup', empty: false, durationMs: 1500 });
  });

  it('audio after the end is not kept (the binding delivers a few more periods after close)', async () => {
    const { r, sink } = recorder();
    const rec = r.record(
      { callId: 'c-2', number: null },
      { maxMs: 60_000, silence: { thresholdDbfs: -45, endAfterMs: 1000 } },
    );
    HandCapture.last?.emit('audio', Buffer.concat([tone(200), Buffer.alloc(16_000)]));
    HandCapture.last?.emit('audio', tone(500));
    expect(await rec.ended).toBe('silence');
    await rec.done;
    expect(sink.ofType('voicemail.recorded')[0]).toMatchObject({ endedBy: 'silence', empty: false, durationMs: 1200 });
  });

  it('a capture error fails the recording (the call ends voicemail_failed upstream)', async () => {
    const { r, kept } = recorder();
    const rec = r.record({ callId: 'c-3', number: null }, 60_000);
    HandCapture.last?.emit('error', new Error('snd_pcm_readi: No such device'));
    await expect(rec.done).rejects.toThrow('No such device');
    await expect(rec.ended).rejects.toThrow('No such device');
    expect(kept).toEqual([]);
  });
});
