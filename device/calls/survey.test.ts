import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SteppedClock } from '../../test/helpers/clock.js';
import { MemoryEventSink } from '../events.js';
import { Store } from '../store/store.js';
import { defaultSettings } from '../uplink/settings.js';
import { parseSurveyReply, SURVEY_MIGRATIONS, SurveySender, surveyEligibility } from './survey.js';

const S = { ...defaultSettings().survey, enabled: true, excludeNumbers: ['+1555999', '+15550001111'] };
const call = (number: string | null) => ({ number, withheld: number === null });

describe('who gets the survey', () => {
  it('an answered caller with an E.164 number, not excluded', () => {
    expect(surveyEligibility(call('+447700900123'), 'answered', S)).toEqual({ ok: true, number: '+447700900123' });
    expect(surveyEligibility(call('+447700900123'), 'answered', { ...S, enabled: false })).toEqual({
      ok: false,
      why: 'disabled',
    });
    for (const o of ['missed', 'voicemail', 'abandoned', 'rolled_over', 'voicemail_failed'] as const) {
      expect(surveyEligibility(call('+447700900123'), o, S)).toEqual({ ok: false, why: 'not_answered' });
    }
  });
  it('never a withheld, national, short or excluded number; only mobile ranges when they are set', () => {
    expect(surveyEligibility(call(null), 'answered', S)).toEqual({ ok: false, why: 'withheld' });
    expect(surveyEligibility(call('07700900123'), 'answered', S)).toEqual({ ok: false, why: 'not_e164' });
    expect(surveyEligibility(call('112'), 'answered', S)).toEqual({ ok: false, why: 'not_e164' });
    expect(surveyEligibility(call('+15559990000'), 'answered', S)).toEqual({ ok: false, why: 'excluded' });
    expect(surveyEligibility(call('+15550001111'), 'answered', S)).toEqual({ ok: false, why: 'excluded' });
    const mobiles = { ...S, mobilePrefixes: ['+447'] };
    expect(surveyEligibility(call('+442079460000'), 'answered', mobiles)).toEqual({ ok: false, why: 'not_mobile' });
    expect(surveyEligibility(call('+447700900123'), 'answered', mobiles).ok).toBe(true);
  });
  it('a reply is one digit 1 to 5', () => {
    expect(['1', ' 5 ', '4.', '3!', '2\n'].map(parseSurveyReply)).toEqual([1, 5, 4, 3, 2]);
    expect(['0', '6', '45', 'four', '4 stars', '', 'ACK 4821'].map(parseSurveyReply)).toEqual([
      null,
      null,
      null,
      null,
      null,
      null,
      null,
    ]);
  });
});

describe('the survey sender', () => {
  it('retries a failed send (30 s, doubling), persists the window across restarts, and matches the reply', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'survey-')), 'box.db');
    const db = await Store.open({ file, migrations: { survey: SURVEY_MIGRATIONS } });
    const clock = new SteppedClock(Date.parse('2026-11-26T10:00:00Z'));
    const sink = new MemoryEventSink();
    let failures = 2;
    const sent: string[] = [];
    const modem = {
      sendSms: async (to: string) => {
        if (failures-- > 0) throw new Error('+CMS ERROR: 38');
        sent.push(to);
        return [1];
      },
    };
    const settings = { ...S, delayS: 60, maxAttempts: 3 };
    const make = () => new SurveySender({ db, sink, modem: () => modem, settings: () => settings, clock });
    let sender = make();
    await sender.start();
    sender.callEnded({ callId: 'c1', number: '+447700900123', withheld: false }, 'answered');
    await sender.idle();
    // Restarted before it was due: the survey is still due, once.
    await sender.stop();
    sender = make();
    await sender.start();
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([]); // first try failed
    clock.advance(30_000);
    await new Promise((r) => setImmediate(r));
    clock.advance(60_000);
    await sender.idle();
    expect(sent).toEqual(['+447700900123']);
    expect(sink.ofType('survey.sent')).toEqual([
      { callId: 'c1', number: '+447700900123', status: 'sent', attempts: 3 },
    ]);
    // Within the window: no second survey.
    sender.callEnded({ callId: 'c2', number: '+447700900123', withheld: false }, 'answered');
    await sender.idle();
    clock.advance(120_000);
    await sender.idle();
    expect(sent).toHaveLength(1);
    // The reply, from the same line in its national form too.
    expect(await sender.matchReply('+447700900123', 'hello')).toBeNull();
    const reply = await sender.matchReply('447700900123', '5');
    expect(reply).toMatchObject({ callId: 'c1', number: '+447700900123', score: 5 });
    await sender.replied(reply as NonNullable<typeof reply>);
    expect(await sender.matchReply('+447700900123', '4')).toBeNull();
    await sender.stop();
    await db.close();
  });
});
