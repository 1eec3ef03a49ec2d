/**
 * The box's command cache: the answer to every fleet command is kept by
 * request id in the store (table command_results, UPLINK_MIGRATIONS), so a
 * redelivered request (a QoS 1 duplicate, the fleet asking again after a
 * lost response) is answered from the cache, not run again, and a command
 * that ran and is redelivered after its expiry gets its kept answer rather
 * than "expired". Answers are kept for COMMAND_RESULT_TTL_MS; prune() at
 * start drops older ones.
 */
import type { DEVICE_COMMANDS, DeviceCommand, ParamsOf, ResultOf } from '../../shared/contract/rpc.js';
import { CallboxError, describeError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { RequestContext } from '../../shared/rpc.js';
import type { Store } from '../store/store.js';

export type CommandHandler<M extends DeviceCommand> = (
  params: ParamsOf<typeof DEVICE_COMMANDS, M>,
  ctx: RequestContext,
) => Promise<ResultOf<typeof DEVICE_COMMANDS, M>> | ResultOf<typeof DEVICE_COMMANDS, M>;

/** Answers to commands are kept this long (a redelivered request id is answered, not executed again). */
export const COMMAND_RESULT_TTL_MS = 7 * 24 * 3600 * 1000;

export class CommandCache {
  /** `store` is read when a command runs (the box opens its store at start, after handlers are registered). */
  constructor(
    private readonly store: () => Store,
    private readonly log: Logger,
  ) {}

  /** Forget answers older than the TTL. */
  async prune(now = Date.now()): Promise<void> {
    await this.store().run('DELETE FROM command_results WHERE at < ?', [now - COMMAND_RESULT_TTL_MS]);
  }

  /** Whether a request with this id ran before (its answer is kept). */
  async answeredBefore(id: string): Promise<boolean> {
    return !!(await this.store().get('SELECT 1 AS ran FROM command_results WHERE id = ?', [id]));
  }

  /** The handler, run at most once per request id: a repeat gets the kept answer (or the kept error). */
  idempotent(method: string, handler: CommandHandler<DeviceCommand>): CommandHandler<DeviceCommand> {
    return async (params, ctx) => {
      const prior = await this.store().get<{ ok: number; response: string }>(
        'SELECT ok, response FROM command_results WHERE id = ?',
        [ctx.id],
      );
      if (prior) {
        const r = JSON.parse(prior.response) as { code?: number; message?: string; details?: Record<string, unknown> };
        if (prior.ok) return r as never;
        throw new CallboxError(r.code as ErrorCode, r.message ?? 'failed', r.details);
      }
      let ok = true;
      let response: unknown;
      try {
        response = await handler(params as never, ctx);
      } catch (e) {
        ok = false;
        response =
          e instanceof CallboxError
            ? e.toJSON()
            : { code: ErrorCode.Internal, name: 'Internal', message: describeError(e) };
        throw e;
      } finally {
        await this.store()
          .run('INSERT OR REPLACE INTO command_results (id, method, ok, response, at) VALUES (?, ?, ?, ?, ?)', [
            ctx.id,
            method,
            ok ? 1 : 0,
            JSON.stringify(response ?? null),
            Date.now(),
          ])
          .catch((err) => this.log.warn({ err }, 'command answer not kept'));
      }
      return response as never;
    };
  }
}
