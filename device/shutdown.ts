/**
 * How the box program ends on SIGTERM/SIGINT (device/main.ts): a clean
 * stop (Box.stop: modules, outbox commits, retained offline status, store),
 * then exit 0 (or the code the caller asks for: an update exits to be restarted
 * on its new release); a second signal exits 1 at once; a stop that takes longer
 * than FORCED_EXIT_MS is abandoned with a log line and exit 1.
 *
 * Why FORCED_EXIT_MS is well below the unit's TimeoutStopSec (25 s,
 * systemd/callbox-device.service): systemd sends SIGKILL when that time is
 * up, and a SIGKILL leaves no trace of what hung. The box must give up first,
 * log it, and exit with its own status, with room to spare: on a loaded Pi
 * a timer fires late (the event loop may be blocked by the very step that
 * hangs), and exiting itself takes time (logs flushed, the store's handles
 * closed by the kernel). Two equal deadlines would race; 15 s against 25 s
 * leaves 10 s. A clean stop takes well under 5 s (the slowest steps, the
 * modem's hang-up and the link's offline publish, are bounded by their own
 * timeouts of a few seconds). test/shutdown.test.ts checks the margin
 * against the unit file.
 */
import type { Logger } from '../shared/log.js';

/** The box gives up on a clean stop this long after the first signal. */
export const FORCED_EXIT_MS = 15_000;

/** At least this much time between the forced exit and systemd's SIGKILL (TimeoutStopSec). */
export const FORCED_EXIT_MARGIN_MS = 5_000;

export interface ShutdownOptions {
  stop: () => Promise<void>;
  exit: (code: number) => void;
  log: Logger;
  forceAfterMs?: number;
}

/** The signal handler: the first call stops cleanly (or is forced out), a second call exits at once. */
export function shutdownHandler(o: ShutdownOptions): (why: string, code?: number) => Promise<void> {
  let exiting = false;
  const forceAfterMs = o.forceAfterMs ?? FORCED_EXIT_MS;
  return async (why, code = 0) => {
    if (exiting) {
      o.log.warn({ why }, 'second signal: exiting now');
      o.exit(1);
      return;
    }
    exiting = true;
    o.log.info({ why }, 'shutting down');
    const force = setTimeout(() => {
      o.log.error({ afterMs: forceAfterMs }, `shutdown took longer than ${forceAfterMs / 1000} s: exiting`);
      o.exit(1);
    }, forceAfterMs);
    force.unref();
    try {
      await o.stop();
    } catch (e) {
      clearTimeout(force);
      o.log.error({ err: e }, 'shutdown failed');
      o.exit(1);
      return;
    }
    clearTimeout(force);
    o.exit(code);
  };
}
