/**
 * The stack overflow that killed the embedded broker under overload,
 * reproduced on aedes's own message router (its mqemitter): a hundred slow
 * deliveries fill the routing slots, a backlog queues behind them whose
 * messages match no subscription (the fleet's persistent session while it is
 * away, aedes's $SYS publishes), and when the first slow one finishes the
 * backlog drains by recursion. Guarded (fleet/broker/mq-guard.ts), the same
 * backlog drains from fresh stacks and every message is routed.
 */
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { guardMqRecursion } from '../fleet/broker/mq-guard.js';

interface Router {
  length: number;
  on(topic: string, fn: (m: unknown, done: () => void) => void, cb?: () => void): void;
  emit(m: { topic: string }, cb?: () => void): void;
}

const BACKLOG = 30_000;

describe("aedes's router under a backlog", () => {
  const brokers: Aedes[] = [];
  afterEach(async () => {
    for (const b of brokers.splice(0)) await new Promise<void>((r) => b.close(() => r()));
  });

  /** Fill the routing slots with slow deliveries, queue a backlog that no one subscribes to. */
  async function flooded(guard: boolean) {
    const broker = await Aedes.createBroker({ concurrency: 100 });
    brokers.push(broker);
    const mq = (broker as unknown as { mq: Router }).mq;
    const stats = guard ? guardMqRecursion(mq) : undefined;
    const slow: (() => void)[] = [];
    await new Promise<void>((r) => mq.on('slow', (_m, done) => slow.push(done), r));
    for (let i = 0; i < 100; i++) mq.emit({ topic: 'slow' });
    let routed = 0;
    for (let i = 0; i < BACKLOG; i++) mq.emit({ topic: 'callbox/v1/cb-away/events' }, () => routed++);
    expect(mq.length).toBe(BACKLOG);
    return { mq, slow, stats, routed: () => routed };
  }

  it('overflows the stack when the backlog drains by recursion (the cause)', async () => {
    const { slow } = await flooded(false);
    expect(() => slow[0]?.()).toThrow(RangeError);
  });

  it('drains the whole backlog from fresh stacks when guarded', async () => {
    const { mq, slow, stats, routed } = await flooded(true);
    expect(() => slow[0]?.()).not.toThrow();
    await expect.poll(() => routed(), { timeout: 20_000 }).toBe(BACKLOG);
    expect(mq.length).toBe(0);
    expect(stats?.deferred).toBeGreaterThan(0);
    expect(stats?.maxDepth).toBeLessThanOrEqual(200);
    for (const done of slow.slice(1)) done();
  });

  it('refuses an emitter whose internals changed', () => {
    expect(() => guardMqRecursion({})).toThrow(/mqemitter changed/);
  });
});
