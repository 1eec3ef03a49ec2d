/**
 * Seeds for randomised tests, so that a failure can be replayed.
 *
 * Property tests (fast-check): assertProperty() runs a property with a seed
 * from CALLBOX_FC_SEED (and the counterexample path from CALLBOX_FC_PATH)
 * when set, else a fresh one; on failure the error vitest prints names the
 * seed, the path and the command that replays it:
 *   CALLBOX_FC_SEED=-1234 CALLBOX_FC_PATH="3:1" npx vitest run <file>
 * CALLBOX_FC_RUNS sets the number of runs (default per property).
 *
 * Fuzz tests: fuzzSeed() is CALLBOX_FUZZ_SEED when set, else a fresh seed;
 * withSeed() adds it to any failure's message; SeededRandom gives the same
 * noise for the same seed.
 */
import { createCipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name}=${v} is not an integer seed`);
  return n;
}

/** Run a fast-check property; a failure's message carries the seed and how to replay it. */
export function assertProperty<Ts>(property: fc.IProperty<Ts>, params: fc.Parameters<Ts> = {}): void {
  const seed = envInt('CALLBOX_FC_SEED');
  const path = process.env.CALLBOX_FC_PATH || undefined;
  const runs = envInt('CALLBOX_FC_RUNS');
  const details = fc.check(property, {
    ...params,
    ...(seed !== undefined ? { seed } : {}),
    ...(seed !== undefined && path ? { path } : {}),
    ...(runs !== undefined ? { numRuns: runs } : {}),
  });
  if (!details.failed) return;
  const replay = `CALLBOX_FC_SEED=${details.seed}${details.counterexamplePath ? ` CALLBOX_FC_PATH="${details.counterexamplePath}"` : ''}`;
  const err = new Error(
    `${fc.defaultReportMessage(details) ?? 'property failed'}\n\nseed ${details.seed}; replay with: ${replay} npx vitest run <this file>`,
  );
  if (details.errorInstance instanceof Error && details.errorInstance.stack)
    err.stack = `${err.message}\n--- the property's own error ---\n${details.errorInstance.stack}`;
  throw err;
}

/** The fuzz seed: CALLBOX_FUZZ_SEED, or a fresh one. */
export function fuzzSeed(): number {
  return envInt('CALLBOX_FUZZ_SEED') ?? Math.floor(Math.random() * 2 ** 31);
}

/** Run a fuzz body; any failure names the seed and how to replay it. */
export async function withSeed(seed: number, body: (seed: number) => Promise<void> | void): Promise<void> {
  try {
    await body(seed);
  } catch (e) {
    const msg = `fuzz seed ${seed}; replay with: CALLBOX_FUZZ_SEED=${seed} npx vitest run <this file>`;
    if (e instanceof Error) {
      e.message = `${e.message}\n\n${msg}`;
      if (e.stack) e.stack = `${msg}\n${e.stack}`;
      throw e;
    }
    throw new Error(`${String(e)}\n\n${msg}`);
  }
}

/**
 * A seeded source of random bytes and numbers: the AES-128-CTR keystream of a key made from the
 * seed (node:crypto), so the same seed gives the same noise on every machine.
 */
export class SeededRandom {
  private readonly cipher: ReturnType<typeof createCipheriv>;
  private pool = Buffer.alloc(0);
  private at = 0;
  constructor(seed: number) {
    const key = createHash('sha256').update(`callbox-fuzz:${seed}`).digest().subarray(0, 16);
    this.cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }
  /** n random bytes. */
  bytes(n: number): Buffer {
    if (this.at + n > this.pool.length) {
      const rest = this.pool.subarray(this.at);
      this.pool = Buffer.concat([rest, this.cipher.update(Buffer.alloc(Math.max(n, 65_536)))]);
      this.at = 0;
    }
    const out = this.pool.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  /** A float in [0, 1). */
  next(): number {
    return this.bytes(4).readUInt32LE(0) / 2 ** 32;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
}
