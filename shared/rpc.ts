/**
 * Request/response over MQTT (see shared/contract/rpc.ts for the contract).
 *
 * RpcRequester: registers the waiter before publishing, starts the timer
 * once the publish is acknowledged, and captures the caller's stack so that
 * a timeout points at the code that asked. With `expires`, requests are
 * version 2 and carry expiresAt (default: when the requester stops waiting).
 * An answer that comes after the requester gave up is logged, not lost in
 * silence (a box refusing an expired command when it comes back).
 * RpcResponder: validates every request against its method, refuses one
 * past its expiresAt (RequestExpired, with the expiry and its own clock),
 * answers a repeated id with the first answer, and answers bad input with a
 * clear error instead of throwing.
 */
import type { MqttClient } from 'mqtt';
import {
  type MethodTable,
  type ParamsOf,
  REQUEST_VERSION,
  RequestSchema,
  ResponseSchema,
  type ResultOf,
  type RpcRequest,
  type RpcResponse,
} from './contract/rpc.js';
import { replyTopicOf, topicMatches } from './contract/topics.js';
import { CallboxError, ErrorCode } from './errors.js';
import { newRequestId } from './ids.js';
import type { Logger } from './log.js';
import { decodePayload, validate } from './validate.js';

type Pending = {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
  stack: string;
};

export interface RequestOptions {
  /** Milliseconds to wait for the answer (default from the requester). */
  timeoutMs?: number;
  /** Reuse an id to retry idempotently. */
  id?: string;
  /** With `expires`: the responder refuses the request this long after it was sent (default: timeoutMs). */
  expiresInMs?: number;
}

/** Requests this requester gave up on, remembered so a late answer is reported (bounded). */
const GAVE_UP_MAX = 1000;

export class RpcRequester<T extends MethodTable> {
  private readonly pending = new Map<string, Pending>();
  private readonly gaveUp = new Map<string, { method: string; timeoutMs: number }>();
  private readonly onMessage = (topic: string, payload: Buffer) => this.handle(topic, payload);
  private started = false;

  constructor(
    private readonly client: MqttClient,
    private readonly table: T,
    private readonly opts: {
      responseFilter: string;
      defaultTimeoutMs: number;
      log?: Logger;
      /**
       * Send version 2 requests with expiresAt (commands to boxes). Without it, version 1 requests
       * that never expire, which responders of every version read (box -> fleet requests).
       */
      expires?: boolean;
    },
  ) {}

  async start(): Promise<void> {
    if (this.started) return;
    this.client.on('message', this.onMessage);
    await this.client.subscribeAsync(this.opts.responseFilter, { qos: 1 });
    this.started = true;
  }

  stop(): void {
    this.client.off('message', this.onMessage);
    this.started = false;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new CallboxError(ErrorCode.ShuttingDown, `request ${p.method} (${id}) cancelled: shutting down`));
    }
    this.pending.clear();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Send a request to `topic` (a …/req topic) and wait for its answer. */
  request<M extends keyof T & string>(
    topic: string,
    method: M,
    params: ParamsOf<T, M>,
    options: RequestOptions = {},
  ): Promise<ResultOf<T, M>> {
    const spec = this.table[method];
    if (!spec) {
      return Promise.reject(new CallboxError(ErrorCode.UnknownMethod, `unknown method ${method}`));
    }
    try {
      validate(spec.params, params, `params of ${method}`);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = options.timeoutMs ?? this.opts.defaultTimeoutMs;
    const id = options.id ?? newRequestId();
    const sentAt = Date.now();
    const request: RpcRequest = this.opts.expires
      ? {
          v: REQUEST_VERSION,
          id,
          method,
          params,
          sentAt: new Date(sentAt).toISOString(),
          timeoutMs,
          expiresAt: new Date(sentAt + (options.expiresInMs ?? timeoutMs)).toISOString(),
        }
      : { v: 1, id, method, params, sentAt: new Date(sentAt).toISOString(), timeoutMs };
    const stack = new Error().stack ?? '';
    return new Promise<ResultOf<T, M>>((resolve, reject) => {
      const entry: Pending = { method, resolve: resolve as (v: unknown) => void, reject, stack };
      this.pending.set(id, entry);
      this.client.publish(topic, JSON.stringify(request), { qos: 1 }, (err) => {
        if (!this.pending.has(id)) return;
        if (err) {
          this.pending.delete(id);
          reject(new CallboxError(ErrorCode.LinkDisconnected, `request ${method} not sent: ${err.message}`, { topic }));
          return;
        }
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          this.gaveUp.set(id, { method, timeoutMs });
          while (this.gaveUp.size > GAVE_UP_MAX) {
            const first = this.gaveUp.keys().next().value;
            if (first === undefined) break;
            this.gaveUp.delete(first);
          }
          const e = new CallboxError(
            ErrorCode.RequestTimeout,
            `request ${method} to ${topic} got no answer within ${timeoutMs} ms`,
            { method, topic, id, timeoutMs },
          );
          e.stack = `${e.name}: ${e.message}\n${stack.split('\n').slice(2).join('\n')}`;
          reject(e);
        }, timeoutMs);
      });
    });
  }

  private handle(topic: string, payload: Buffer): void {
    if (!topicMatches(this.opts.responseFilter, topic)) return;
    let res: RpcResponse;
    try {
      res = decodePayload(ResponseSchema, payload, `response on ${topic}`);
    } catch (e) {
      this.opts.log?.warn({ err: e, topic }, 'malformed response dropped');
      return;
    }
    const p = this.pending.get(res.id);
    if (!p) {
      // Someone else's (requesters may share a response filter), or ours, late after a timeout.
      const late = this.gaveUp.get(res.id);
      if (late) {
        this.gaveUp.delete(res.id);
        const fields = { topic, id: res.id, method: late.method, gaveUpAfterMs: late.timeoutMs };
        if (res.ok) this.opts.log?.warn(fields, `late answer to ${late.method}: it ran after the requester gave up`);
        else
          this.opts.log?.warn(
            { ...fields, code: res.error.code, error: res.error.message, details: res.error.details },
            `late refusal of ${late.method}: ${res.error.message}`,
          );
      }
      return;
    }
    this.pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) {
      const spec = this.table[p.method];
      try {
        p.resolve(spec ? validate(spec.result, res.result, `result of ${p.method}`) : res.result);
      } catch (e) {
        p.reject(e);
      }
    } else {
      p.reject(
        new CallboxError(
          (res.error.code as ErrorCode) || ErrorCode.RequestRejected,
          `${p.method} failed: ${res.error.message}`,
          res.error.details === undefined
            ? { remote: res.error.name }
            : { remote: res.error.name, ...(res.error.details as object) },
        ),
      );
    }
  }
}

/** The largest answer a responder sends (bytes of JSON); above, the caller is asked to page. */
export const DEFAULT_MAX_ANSWER_BYTES = 1_048_576;

export interface RequestContext {
  topic: string;
  id: string;
}

/** Is a request past its expiry on this side's clock? The RequestExpired error if so. */
export function expiryError(req: RpcRequest, now: number, side = 'the responder'): CallboxError | undefined {
  if (!req.expiresAt) return undefined;
  const expires = Date.parse(req.expiresAt);
  if (!(now > expires)) return undefined;
  const responderTime = new Date(now).toISOString();
  return new CallboxError(
    ErrorCode.RequestExpired,
    `${req.method} expired at ${req.expiresAt} (sent at ${req.sentAt}); ${side}'s clock says ${responderTime}: not run`,
    { method: req.method, sentAt: req.sentAt, expiresAt: req.expiresAt, responderTime },
  );
}

export type Handlers<T extends MethodTable> = {
  [M in keyof T]?: (params: ParamsOf<T, M>, ctx: RequestContext) => Promise<ResultOf<T, M>> | ResultOf<T, M>;
};

/**
 * Answers requests on `requestFilter`. A handler may throw a CallboxError
 * (its code goes back) or anything else (Internal). Answers are cached by
 * requester and request id for `dedupWindow` entries so a redelivered
 * request (QoS 1) is not executed twice. The requester is the request
 * topic (…/_ops/<user>/req, …/<deviceId>/fleet/req): the broker lets only
 * that identity publish there, so one requester's answer is never replayed
 * to another who guessed or saw its id (docs/SECURITY.md).
 *
 * An answer larger than `maxAnswerBytes` (default 1 MiB) is replaced by a
 * PayloadTooLarge error asking for a smaller page: no answer can grow past a
 * known bound, whatever the data.
 */
export class RpcResponder<T extends MethodTable> {
  private readonly answered = new Map<string, string>();
  private readonly inProgress = new Map<string, Promise<string>>();
  private readonly onMessage = (topic: string, payload: Buffer) => {
    if (topicMatches(this.opts.requestFilter, topic)) {
      // Unanswered when it fails: the requester times out naming the method.
      this.handle(topic, payload).catch((err) => this.opts.log?.error({ err, topic }, 'request not answered'));
    }
  };

  constructor(
    private readonly client: MqttClient,
    private readonly table: T,
    private readonly handlers: Handlers<T>,
    private readonly opts: {
      requestFilter: string;
      log?: Logger;
      dedupWindow?: number;
      /**
       * Ids answered before and kept elsewhere (the box's command_results): such a request,
       * redelivered after its expiry, goes to its handler for the kept answer instead of being
       * refused as expired (it did run).
       */
      answeredBefore?: (id: string) => Promise<boolean>;
      /** This side's clock (default Date.now). */
      now?: () => number;
      /** Who answers, in a refusal's text ("this box"); default "the responder". */
      side?: string;
      /** Answers larger than this become a PayloadTooLarge error asking for a smaller page. */
      maxAnswerBytes?: number;
      /**
       * False: do not subscribe at the broker; the requests reach the client's 'message' listeners
       * another way (cluster mode: one worker of a NATS queue group, fleet/cluster/request-queue.ts).
       */
      subscribe?: boolean;
    },
  ) {}

  private listening = false;

  /** Listen and subscribe (again after a reconnect without a session: safe to call twice). */
  async start(): Promise<void> {
    if (!this.listening) {
      this.client.on('message', this.onMessage);
      this.listening = true;
    }
    if (this.opts.subscribe !== false) await this.client.subscribeAsync(this.opts.requestFilter, { qos: 1 });
  }

  /**
   * Stop answering. The subscription is kept by default, so that requests
   * sent meanwhile wait in a persistent session; pass unsubscribe: true to
   * drop it at the broker too.
   */
  async stop(options: { unsubscribe?: boolean } = {}): Promise<void> {
    this.client.off('message', this.onMessage);
    this.listening = false;
    if (options.unsubscribe && this.opts.subscribe !== false && this.client.connected) {
      await this.client.unsubscribeAsync(this.opts.requestFilter).catch(() => undefined);
    }
  }

  private async handle(topic: string, payload: Buffer): Promise<void> {
    const replyTo = replyTopicOf(topic);
    let raw: string;
    let id: string | undefined;
    try {
      // Pull the id out first so even a malformed request gets an answer it can match.
      const parsed = JSON.parse(payload.toString('utf8')) as { id?: unknown };
      if (typeof parsed?.id === 'string') id = parsed.id;
    } catch {
      /* reported by decodePayload below */
    }
    // Keyed by who asked (the request topic, which the broker binds to one identity) and the id.
    const key = id ? `${topic}\u0000${id}` : undefined;
    const cached = key ? this.answered.get(key) : undefined;
    if (cached) {
      this.client.publish(replyTo, cached, { qos: 1 });
      return;
    }
    const running = key ? this.inProgress.get(key) : undefined;
    if (running) {
      raw = await running;
      this.client.publish(replyTo, raw, { qos: 1 });
      return;
    }
    const work = this.execute(topic, payload, id);
    if (key) this.inProgress.set(key, work);
    raw = await work;
    if (key) {
      this.inProgress.delete(key);
      this.remember(key, raw);
    }
    this.client.publish(replyTo, raw, { qos: 1 });
  }

  private remember(key: string, raw: string): void {
    this.answered.set(key, raw);
    const max = this.opts.dedupWindow ?? 1000;
    while (this.answered.size > max) {
      const first = this.answered.keys().next().value;
      if (first === undefined) break;
      this.answered.delete(first);
    }
  }

  private async execute(topic: string, payload: Buffer, id: string | undefined): Promise<string> {
    const fail = (e: unknown): string => {
      const err =
        e instanceof CallboxError
          ? e
          : new CallboxError(ErrorCode.Internal, e instanceof Error ? e.message : String(e));
      if (err.code === ErrorCode.Internal) this.opts.log?.error({ err: e, topic }, 'request handler failed');
      else this.opts.log?.info({ topic, code: err.code, msg: err.message }, 'request refused');
      return JSON.stringify({ v: 1, id: id ?? '00000000-0000-7000-8000-000000000000', ok: false, error: err.toJSON() });
    };
    let req: RpcRequest;
    try {
      req = decodePayload(RequestSchema, payload, `request on ${topic}`);
    } catch (e) {
      return fail(e);
    }
    const spec = this.table[req.method];
    const handler = this.handlers[req.method as keyof T];
    if (!spec || !handler) {
      return fail(
        new CallboxError(
          ErrorCode.UnknownMethod,
          `unknown method "${req.method}"; this side answers: ${Object.keys(this.handlers).join(', ')}`,
        ),
      );
    }
    if (req.v === 2 && !req.expiresAt) {
      return fail(
        new CallboxError(
          ErrorCode.ValidationFailed,
          `request on ${topic}: expiresAt is required in a version 2 request`,
        ),
      );
    }
    const expired = expiryError(req, this.opts.now?.() ?? Date.now(), this.opts.side);
    if (expired) {
      let ranBefore = false;
      try {
        ranBefore = (await this.opts.answeredBefore?.(req.id)) ?? false;
      } catch (e) {
        this.opts.log?.warn({ err: e, id: req.id }, 'cannot tell whether an expired request ran before');
      }
      if (!ranBefore) return fail(expired);
    }
    try {
      const params = validate(spec.params, req.params, `params of ${req.method}`);
      const result = await handler(params as never, { topic, id: req.id });
      const raw = JSON.stringify({ v: 1, id: req.id, ok: true, result });
      const max = this.opts.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
      if (Buffer.byteLength(raw) > max) {
        throw new CallboxError(
          ErrorCode.PayloadTooLarge,
          `the answer to ${req.method} would be ${Buffer.byteLength(raw)} bytes, over the ${max} bytes an answer may have: ask for fewer (limit) and page on with the cursor`,
          { bytes: Buffer.byteLength(raw), max },
        );
      }
      return raw;
    } catch (e) {
      return fail(e);
    }
  }
}
