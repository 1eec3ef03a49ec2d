/**
 * A guard on the recursion in aedes's message router (mqemitter), the cause
 * of "RangeError: Maximum call stack size exceeded" that killed the broker
 * child under overload (200 boxes x 100 events/s).
 *
 * How it overflows (mqemitter 7.1.0, mqemitter.js): aedes routes every
 * PUBLISH through `mq.emit`. At most `concurrency` (aedes: 100) messages are
 * routed at once; the rest wait in `_messageQueue`. When one finishes,
 * `released()` takes the next from the queue and calls `_do()` for it, from
 * inside the finishing call. If that next message also finishes at once
 * (fastparallel calls back synchronously when no subscription matches: the
 * fleet's persistent session while it is away or reconnecting, aedes's own
 * $SYS publishes, a wildcard subscription skipping a $ topic), `released()`
 * runs again one level deeper, and so on for the whole queue: a backlog of
 * some thousands of messages is a stack overflow. Upstream knows it
 * (mcollina/mqemitter#204, open: "test if this was called in the same tick
 * more than x times and then use setImmediate"; moscajs/aedes#193), with no
 * release that fixes it.
 *
 * The guard does what that thread proposes, from outside: it wraps the
 * emitter's `_do` and counts how deep the nested calls are; past `maxDepth`
 * the next message is routed from a fresh stack (setImmediate) instead.
 * Each finishing message still takes exactly one from the queue, so the
 * throughput and the concurrency bound stay as they were; only the chain of
 * synchronous completions is cut.
 */

/** The part of an mqemitter instance the guard needs (a private method: checked at start). */
interface Routable {
  _do?: (message: unknown, callback: unknown) => unknown;
}

export interface MqGuardStats {
  /** Messages routed from a fresh stack because the chain was too deep. */
  deferred: number;
  /** Deepest chain seen. */
  maxDepth: number;
}

/**
 * Guard `mq` (aedes's `broker.mq`) in place. Throws if the emitter has no `_do` (an mqemitter whose
 * internals changed: look again at the cause above before upgrading).
 */
export function guardMqRecursion(mq: unknown, maxDepth = 200): MqGuardStats {
  const target = mq as Routable;
  const inner = target._do;
  if (typeof inner !== 'function') {
    throw new Error('aedes message router has no _do(): mqemitter changed; review fleet/broker/mq-guard.ts');
  }
  const stats: MqGuardStats = { deferred: 0, maxDepth: 0 };
  let depth = 0;
  const guarded = (message: unknown, callback: unknown): unknown => {
    if (depth >= maxDepth) {
      stats.deferred++;
      setImmediate(() => guarded(message, callback));
      return target;
    }
    depth++;
    if (depth > stats.maxDepth) stats.maxDepth = depth;
    try {
      return inner.call(target, message, callback);
    } finally {
      depth--;
    }
  };
  target._do = guarded;
  return stats;
}
