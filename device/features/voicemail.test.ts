import { describe, expect, it } from 'vitest';
import { VoicemailFeature } from './voicemail.js';

describe('VoicemailFeature.result: was the message of a voicemail call kept?', () => {
  it('no: recording is off (no audio capture), and the calls feature is told why', async () => {
    const f = new VoicemailFeature();
    f.unavailable = 'alsa-capture is not installed';
    f.record({ callId: 'c-1', number: '+15550001111', maxLengthMs: 60_000, situation: 'afterHours' });
    expect(await f.result('c-1')).toEqual({
      stored: false,
      reason: 'recording is off: alsa-capture is not installed',
    });
  });

  it('no: a call this run never recorded (the box restarted during it)', async () => {
    expect(await new VoicemailFeature().result('c-2')).toEqual({
      stored: false,
      reason: 'no recording of this call (the box restarted during it)',
    });
  });
});
