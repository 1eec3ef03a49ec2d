/**
 * The ops API over HTTP: every method of OPS_METHODS the fleet answers (its features' included) as
 *
 *   GET  /api/v1/<method>?<params>   methods open to viewers (reading): params from the query string,
 *                                    converted to the types of the method's params schema
 *   POST /api/v1/<method>  {params}  the others (changing something): a JSON body, the x-csrf-token header
 *
 * Each runs the same handler as over MQTT (OpsApi.call) as the session's user: the same role and clinic
 * checks, the same answer (the method's result schema). Refusals have the one error shape (./errors.ts).
 */
import { Value } from '@sinclair/typebox/value';
import '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OPS_METHODS, type OpsMethod } from '../../shared/contract/ops.js';
import type { Caller, OpsApi } from '../ops-api.js';
import { ErrorBodySchema } from './errors.js';
import { requireSession } from './session.js';

/** Is a method reading only (GET)? Those open to the viewer role. */
export function isReadMethod(method: OpsMethod): boolean {
  return OPS_METHODS[method].role === 'viewer';
}

const ERRORS = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  403: ErrorBodySchema,
  404: ErrorBodySchema,
  409: ErrorBodySchema,
};

/** Query strings carry text: turn "10" into 10 and "true" into true where the schema says so. */
function fromQuery(method: OpsMethod, query: unknown): unknown {
  const q = { ...((query as Record<string, unknown>) ?? {}) };
  return Value.Convert(OPS_METHODS[method].params, q);
}

export function opsRoutes(app: FastifyInstance, ops: OpsApi): void {
  for (const method of ops.methods()) {
    const spec = OPS_METHODS[method];
    if (!spec) continue;
    const url = `/api/v1/${method}`;
    const clinic = (spec as { clinic?: string }).clinic;
    const description = `${spec.description}. Role: ${spec.role}${clinic ? `; clinic users: ${clinic} scope` : '; not for clinic users'}.`;
    const run = (req: FastifyRequest, params: unknown) => ops.call(method, params, req.caller as Caller, req.id);
    if (isReadMethod(method)) {
      app.get(
        url,
        {
          schema: {
            tags: [method.split('.')[0] ?? 'ops'],
            operationId: method,
            description,
            querystring: spec.params,
            response: { 200: spec.result, ...ERRORS },
          },
          preHandler: requireSession,
        },
        async (req) => run(req, fromQuery(method, req.query)),
      );
    } else {
      app.post(
        url,
        {
          schema: {
            tags: [method.split('.')[0] ?? 'ops'],
            operationId: method,
            description,
            body: spec.params,
            response: { 200: spec.result, ...ERRORS },
          },
          preHandler: [requireSession, app.csrfProtection],
        },
        async (req) => run(req, req.body ?? {}),
      );
    }
  }
}
