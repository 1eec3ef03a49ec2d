/**
 * A work queue with bounded concurrency: each voicemail id is queued once
 * (a second push while it waits or runs is ignored), at most `concurrency`
 * jobs run at a time, a failed job is logged by the runner and never stops
 * the queue. idle() waits until nothing waits or runs (tests, orderly stop).
 */
import type { Logger } from '../../shared/log.js';

export class WorkQueue {
  private readonly waiting: string[] = [];
  private readonly known = new Set<string>();
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly job: (id: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Queue an id (false when it is already queued or running, or the queue stopped). */
  push(id: string): boolean {
    if (this.stopped || this.known.has(id)) return false;
    this.known.add(id);
    this.waiting.push(id);
    this.pump();
    return true;
  }

  get size(): number {
    return this.waiting.length + this.running;
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.waiting.length > 0) {
      const id = this.waiting.shift() as string;
      this.running++;
      this.job(id)
        .catch((err) => this.log.error({ err, voicemailId: id }, 'triage job failed'))
        .finally(() => {
          this.running--;
          this.known.delete(id);
          this.pump();
          if (this.size === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  /** Resolves when nothing waits or runs. */
  idle(): Promise<void> {
    if (this.size === 0 || (this.stopped && this.running === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Take nothing new; jobs running finish (await idle()). Waiting ids stay pending in the store. */
  stop(): Promise<void> {
    this.stopped = true;
    for (const id of this.waiting.splice(0)) this.known.delete(id);
    if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
    return this.running === 0 ? Promise.resolve() : this.idle();
  }
}
