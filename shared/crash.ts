/**
 * The process-level policy of both programs (device/main.ts, fleet/main.ts):
 * an unhandled promise rejection or an uncaught exception means some work
 * failed where nobody handled it, so the program's state may be wrong in
 * ways nobody knows. It is logged (fatal, with the stack, also on stderr in
 * case the logger is what broke) and the process exits with EXIT_CRASH;
 * systemd (Restart=always in systemd/*.service) starts it again, and it
 * resumes from its durable state (the box's outbox and call records, the
 * fleet's store and alert state). Nothing is flushed on the way out: what
 * matters is already durable, and a half-broken process must not write more.
 *
 * Background tasks handle their own failures (shared/background.ts); this
 * is the net for the ones that slipped through.
 */
import type { Logger } from './log.js';

/** Exit status after an unhandled failure (EX_SOFTWARE from sysexits.h). */
export const EXIT_CRASH = 70;

export interface CrashOptions {
  /** What ends the process (tests); default process.exit. */
  exit?: (code: number) => void;
  /** Program name in the stderr line. */
  program: string;
}

/** Install the handlers; returns their removal. Installing twice keeps one set. */
export function exitOnUnhandled(log: Logger, o: CrashOptions): () => void {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let done = false;
  const die = (kind: 'unhandledRejection' | 'uncaughtException', err: unknown) => {
    if (done) return;
    done = true;
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    try {
      log.fatal({ err, kind }, `${kind}: exiting with ${EXIT_CRASH} so that systemd restarts the program`);
    } catch {
      /* the logger may be what broke: stderr below still says it */
    }
    try {
      process.stderr.write(`${o.program}: ${kind}: ${text}\n`);
    } catch {
      /* nothing left to tell */
    }
    exit(EXIT_CRASH);
  };
  const onRejection = (reason: unknown) => die('unhandledRejection', reason);
  const onException = (err: Error) => die('uncaughtException', err);
  const g = globalThis as { __callboxCrashHandlers?: () => void };
  g.__callboxCrashHandlers?.();
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const remove = () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    if (g.__callboxCrashHandlers === remove) g.__callboxCrashHandlers = undefined;
  };
  g.__callboxCrashHandlers = remove;
  return remove;
}
