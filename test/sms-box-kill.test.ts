/**
 * The short version of `npm run faults:sms` (bench/sms-box-kill.ts): the
 * real box program SIGKILLed a few times while SMS and calls arrive; every
 * SMS the modem emulator delivered is an sms.received event exactly once.
 * Replay a failure: CALLBOX_FAULT_SEED=<seed printed in the failure>.
 */
import { describe, expect, it } from 'vitest';
import { runSmsKill } from '../bench/sms-box-kill.js';

const SEED = Number(process.env.CALLBOX_FAULT_SEED ?? 20261202);

describe('the box killed while SMS arrive', () => {
  it('records every delivered SMS exactly once across SIGKILLs', { timeout: 120_000 }, async () => {
    const r = await runSmsKill({ kills: 4, seed: SEED, maxRunMs: 2000 });
    const summary = `seed ${r.seed}: delivered ${r.delivered}, recorded ${r.recorded}, lost ${r.lost.length}, duplicated ${r.duplicated.length}`;
    expect(r.delivered, summary).toBeGreaterThan(5);
    expect(r.lost, summary).toEqual([]);
    expect(r.duplicated, summary).toEqual([]);
    expect(r.recorded, summary).toBe(r.delivered);
  });
});
