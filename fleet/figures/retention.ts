/**
 * Telemetry retention: every `everyMs` (and once at start), delete the
 * samples received more than `retentionDays` ago. Timers and the clock are
 * the process's (tests use fake timers).
 */
import type { Logger } from '../../shared/log.js';
import type { FiguresStore } from './store.js';

export class TelemetryRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly figures: Pick<FiguresStore, 'pruneTelemetry'>,
    private readonly opts: { retentionDays: number; everyMs: number; log: Logger },
  ) {}

  start(): Promise<number> {
    this.timer = setInterval(() => void this.prune(), this.opts.everyMs);
    this.timer.unref?.();
    return this.prune();
  }

  /** One pass (a pass running is joined); returns how many samples were deleted. Never rejects. */
  prune(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const before = new Date(Date.now() - this.opts.retentionDays * 86_400_000).toISOString();
    try {
      const n = await this.figures.pruneTelemetry(before);
      if (n > 0) this.opts.log.info({ n, before }, 'old telemetry deleted');
      return n;
    } catch (err) {
      this.opts.log.warn({ err }, 'deleting old telemetry failed');
      return 0;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
