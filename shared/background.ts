/**
 * Background work that nobody awaits. `void promise` hides a rejection
 * until Node's process-level handler turns it into an exit; every such task
 * goes through background() instead: its failure is logged with what the
 * task was, and `onError` reports it where state may now be wrong (an event
 * or an alert). Neither the log nor onError can throw back into the caller.
 */
import type { Logger } from './log.js';

export function background(
  task: Promise<unknown>,
  log: Logger,
  what: string,
  onError?: (err: unknown) => unknown,
): void {
  task.catch(async (err: unknown) => {
    try {
      log.error({ err, task: what }, `background task failed: ${what}`);
      await onError?.(err);
    } catch (e) {
      try {
        log.error({ err: e, task: what }, `reporting a failed background task failed: ${what}`);
      } catch {
        /* the logger itself is broken: nothing left to tell */
      }
    }
  });
}
