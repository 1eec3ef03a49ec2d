/**
 * The short part of the fault suite (the whole of it: `npm run faults`):
 * the real fleet program's process group SIGKILLed at seeded random moments,
 * a write lock held 4 s on its SQLite file then SIGKILL, its broker child
 * killed, and in external mode Mosquitto killed and restarted, while real
 * box uplinks send. No event a box was told is stored may be missing, none
 * stored twice, none left without a receipt.
 *
 * Replay a failure: CALLBOX_FAULT_SEED=<seed printed>.
 */
import { describe, expect, it } from 'vitest';
import { formatFigures, runFaultSuite } from './faults/harness.js';

const SEED = Number(process.env.CALLBOX_FAULT_SEED ?? 20261201);

describe('fault suite (short)', () => {
  it(`nothing receipted is lost, nothing stored twice (seed ${SEED})`, async () => {
    const lines: string[] = [];
    const figures = await runFaultSuite({
      seed: SEED,
      boxes: 8,
      kills: 3,
      eventsPerS: 5,
      panicEvery: 10,
      scenarios: ['sigkill', 'stall', 'broker', 'mosquitto'],
      outageS: 0,
      receiptTimeoutMs: 3000,
      drainTimeoutMs: 90_000,
      log: (l) => lines.push(l),
    });
    console.log(lines.join('\n'));
    for (const f of figures) {
      const what = `${formatFigures(f)} (seed ${SEED})`;
      expect(f.faults, what).toBeGreaterThanOrEqual(1);
      expect(f.receipted, what).toBeGreaterThan(50);
      expect(f.lost, what).toBe(0);
      expect(f.storedTwice, what).toBe(0);
      expect(f.unreceipted, what).toBe(0);
      expect(f.stored, what).toBeGreaterThanOrEqual(f.receipted);
    }
    expect(figures.find((f) => f.scenario === 'sigkill')?.faults).toBe(3);
  }, 420_000); // ~80 s on an idle 2-core machine
});
