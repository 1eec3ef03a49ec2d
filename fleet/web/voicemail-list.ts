/**
 * GET /api/v1/voicemail.list?clinicId=&limit=: the voicemail inbox of a clinic for the dashboard, newest
 * first: each message the boxes reported (voicemail.recorded events), whether the fleet holds its audio
 * (GET /api/v1/voicemail/:id/audio), and who marked it heard and when (the audit log of voicemail.heard).
 * An HTTP route of the web feature, not an ops method. A clinic user gets its own clinic only (403 for
 * another); caller numbers in clear for operator, admin and clinic users, the last 4 digits for viewers.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { Nullable, Type } from '../../shared/schema.js';
import type { Fleet } from '../fleet.js';
import type { Caller } from '../ops-api.js';
import type { Box } from '../store/types.js';
import { ErrorBodySchema, HttpError } from './errors.js';
import { requireSession } from './session.js';

const VoicemailItem = Type.Object({
  voicemailId: Type.String(),
  deviceId: Type.String(),
  serial: Type.String(),
  clinicId: Nullable(Type.String()),
  at: Type.String({ description: 'when the box recorded it' }),
  durationMs: Type.Integer(),
  number: Nullable(Type.String({ description: 'the caller; masked to the last 4 digits for viewers' })),
  stored: Type.Boolean({ description: 'the fleet holds the audio' }),
  heardAt: Nullable(Type.String()),
  heardBy: Nullable(Type.String()),
});

function mask(n: string | null): string | null {
  return n === null ? null : `…${n.slice(-4)}`;
}

export function voicemailListRoute(app: FastifyInstance, fleet: Fleet): void {
  app.get<{ Querystring: { clinicId?: string; limit?: string } }>(
    '/api/v1/voicemail.list',
    {
      schema: {
        tags: ['voicemail'],
        summary: "a clinic's voicemail inbox, newest first (clinic users: their clinic only)",
        querystring: Type.Object({
          clinicId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'default 100' })),
        }),
        response: { 200: Type.Array(VoicemailItem), 401: ErrorBodySchema, 403: ErrorBodySchema },
      },
      preHandler: requireSession,
    },
    async (req) => {
      const caller = req.caller as Caller;
      let clinicId = req.query.clinicId;
      if (caller.role === 'clinic') {
        if (clinicId && clinicId !== caller.clinicId) {
          throw new HttpError(403, 'NotAuthorized', 'a clinic user sees its own clinic only', {
            field: 'clinicId',
            value: clinicId,
            accepted: 'your clinic',
          });
        }
        clinicId = caller.clinicId ?? undefined;
      }
      const limit = Math.min(1000, Math.max(1, Number(req.query.limit ?? 100) || 100));
      const boxes: Box[] = [];
      for (let after: string | undefined; ; ) {
        const page = await fleet.store.listBoxes({
          limit: 1000,
          ...(clinicId ? { clinicId } : {}),
          ...(after ? { after } : {}),
        });
        boxes.push(...page);
        if (page.length < 1000) break;
        after = page[page.length - 1]?.serial;
      }
      const dir = fleet.config.voicemail.dir;
      const items: (typeof VoicemailItem)['static'][] = [];
      for (const box of boxes) {
        if (!box.deviceId) continue;
        const events = await fleet.store.listEvents({ deviceId: box.deviceId, type: 'voicemail.recorded', limit });
        for (const e of events) {
          const body = e.body as { voicemailId: string; durationMs: number; number: string | null };
          items.push({
            voicemailId: body.voicemailId,
            deviceId: box.deviceId,
            serial: box.serial,
            clinicId: box.clinicId,
            at: e.at,
            durationMs: body.durationMs,
            number: caller.role === 'viewer' ? mask(body.number) : body.number,
            stored: false,
            heardAt: null,
            heardBy: null,
          });
        }
      }
      items.sort((a, b) => b.at.localeCompare(a.at));
      const page = items.slice(0, limit);
      for (const v of page) {
        v.stored = await access(join(dir, v.deviceId, `${v.voicemailId}.wav`)).then(
          () => true,
          () => false,
        );
        const [heard] = await fleet.store.listAudit({ target: `voicemail:${v.voicemailId}`, limit: 1 });
        if (heard) {
          v.heardAt = heard.at;
          v.heardBy = heard.actor;
        }
      }
      return page;
    },
  );
}
