/**
 * One pass at a time: a call while a pass runs asks for one more pass right
 * after it (many calls meanwhile coalesce into one) and returns the running
 * pass. The engine's tick (kick) and its stored-event reader (consume) are
 * both this shape.
 */
export interface SingleFlightOptions {
  /** False once the owner stopped: no new pass starts and no further pass is repeated. */
  active: () => boolean;
  /** A pass threw (the run ends; the next call starts again). */
  onError: (e: unknown) => void;
  /** After the run ended (also after an error), with the flight already clear. */
  after?: () => Promise<void>;
}

export class SingleFlight {
  private current: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly opts: SingleFlightOptions,
  ) {}

  /** The run in progress, if any. */
  get running(): Promise<void> | undefined {
    return this.current;
  }

  /** Start a run, or ask the running one for one more pass. Never rejects. */
  run(): Promise<void> {
    if (!this.opts.active()) return Promise.resolve();
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && this.opts.active());
      } catch (e) {
        this.opts.onError(e);
      } finally {
        this.current = undefined;
        await this.opts.after?.();
      }
    })();
    return this.current;
  }
}
