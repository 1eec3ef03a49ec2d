/**
 * One error shape for everything the HTTP API answers:
 *
 *   { "error": { "code": "ValidationFailed", "message": "...", "field": "clinicId", "value": "...", "accepted": "..." } }
 *
 * `code` is the CallboxError's name (shared/errors.ts) or one of the HTTP layer's own (NoSession, CsrfRefused,
 * RateLimited, NotFound); field, value and accepted name the first bad field of a refused request.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { Type } from '../../shared/schema.js';
import type { FieldProblem } from '../../shared/validate.js';

export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'CallboxError name, or NoSession, CsrfRefused, RateLimited, NotFound' }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'the bad field (a path: clinicId, settings/hours)' })),
      value: Type.Optional(Type.Unknown({ description: 'what was given' })),
      accepted: Type.Optional(Type.String({ description: 'what is accepted' })),
    }),
  },
  { $id: 'Error', description: 'every refusal and failure' },
);

export interface ErrorBody {
  error: { code: string; message: string; field?: string; value?: unknown; accepted?: string };
}

/** An error of the HTTP layer with its status and code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: { field?: string; value?: unknown; accepted?: string } = {},
  ) {
    super(message);
  }
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.ValidationFailed]: 400,
  [ErrorCode.ConfigInvalid]: 400,
  [ErrorCode.UnknownMethod]: 404,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.AlertNotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.ClaimPending]: 409,
  [ErrorCode.ClaimRejected]: 409,
  [ErrorCode.DeviceDecommissioned]: 409,
  [ErrorCode.DeviceOffline]: 409,
  [ErrorCode.RequestExpired]: 409,
  [ErrorCode.UpdateRefused]: 409,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.RequestTimeout]: 504,
  [ErrorCode.LinkDisconnected]: 503,
  [ErrorCode.StoreUnavailable]: 503,
  [ErrorCode.ShuttingDown]: 503,
};

function fromProblem(p: FieldProblem | undefined) {
  if (!p) return {};
  const field = p.path.replace(/^\//, '') || undefined;
  return { ...(field ? { field } : {}), value: p.value, accepted: p.expected };
}

/** The status and body for anything thrown by a handler. */
export function toHttpError(e: unknown, log?: Logger): { status: number; body: ErrorBody } {
  if (e instanceof HttpError) {
    return { status: e.status, body: { error: { code: e.code, message: e.message, ...e.extra } } };
  }
  if (e instanceof CallboxError) {
    const d = (e.details ?? {}) as Record<string, unknown>;
    let status = STATUS[e.code] ?? 500;
    if (e.code === ErrorCode.NotAuthorized) status = d.status === 401 ? 401 : 403;
    const extra =
      Array.isArray(d.problems) && d.problems.length > 0
        ? fromProblem(d.problems[0] as FieldProblem)
        : {
            ...(typeof d.field === 'string' ? { field: d.field } : {}),
            ...(d.value !== undefined ? { value: d.value } : {}),
            ...(typeof d.accepted === 'string' ? { accepted: d.accepted } : {}),
          };
    if (status >= 500) log?.error({ err: e }, 'request failed');
    const code = e.code === ErrorCode.NotAuthorized && status === 401 ? 'NoSession' : (ErrorCode[e.code] ?? 'Internal');
    return { status, body: { error: { code, message: e.message, ...extra } } };
  }
  const fe = e as Partial<FastifyError> & { statusCode?: number };
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code =
      fe.code === 'FST_CSRF_INVALID_TOKEN' || fe.code === 'FST_CSRF_MISSING_SECRET'
        ? 'CsrfRefused'
        : fe.statusCode === 429
          ? 'RateLimited'
          : fe.validation
            ? 'ValidationFailed'
            : fe.statusCode === 404
              ? 'NotFound'
              : (fe.code ?? 'BadRequest');
    const message =
      code === 'CsrfRefused'
        ? 'this request changes something and needs the x-csrf-token header (from POST or GET /api/session)'
        : (fe.message ?? 'bad request');
    return { status: fe.statusCode, body: { error: { code, message } } };
  }
  log?.error({ err: e }, 'request failed');
  return { status: 500, body: { error: { code: 'Internal', message: 'internal error (logged on the fleet)' } } };
}

/** Install the one error shape on an app (every route, 404s included). */
export function useErrorShape(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((e, _req, reply) => {
    const { status, body } = toHttpError(e, log);
    if (status === 429 && reply.getHeader('retry-after') === undefined) reply.header('retry-after', 60);
    return reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: { code: 'NotFound', message: `no route ${req.method} ${req.url.split('?')[0]} (see /api/openapi.json)` },
    }),
  );
}
