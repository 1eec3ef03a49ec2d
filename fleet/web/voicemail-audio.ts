/**
 * GET /api/v1/voicemail/:id/audio: a stored voicemail (voicemail.dir/<deviceId>/<id>.wav, opened with the
 * fleet's patient-data key when sealed at rest), as audio/wav, with Range requests (206, 416) so a browser
 * can seek. A session is needed; a clinic user gets its own clinic's voicemail only (403 otherwise).
 * Voicemails are small (minutes of 8 kHz audio): opened whole, then sliced.
 */
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { Type } from '../../shared/schema.js';
import type { Fleet } from '../fleet.js';
import type { Caller } from '../ops-api.js';
import { ErrorBodySchema, HttpError } from './errors.js';
import { requireSession } from './session.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The box (device id) a voicemail is stored under, looking only among `deviceIds` when given. */
export async function voicemailDevice(
  dir: string,
  voicemailId: string,
  deviceIds?: string[],
): Promise<string | undefined> {
  if (!UUID.test(voicemailId)) return undefined; // also keeps the id from naming any other path
  const candidates =
    deviceIds ??
    (await readdir(dir, { withFileTypes: true }).then(
      (d) => d.filter((e) => e.isDirectory()).map((e) => e.name),
      () => [] as string[],
    ));
  for (const deviceId of candidates) {
    if (await exists(join(dir, deviceId, `${voicemailId}.wav`))) return deviceId;
  }
  return undefined;
}

/** The clinic a voicemail is of (for the ops API's clinic scope), or null. */
export async function clinicOfVoicemail(fleet: Fleet, voicemailId: string): Promise<string | null> {
  const deviceId = await voicemailDevice(fleet.config.voicemail.dir, voicemailId);
  if (!deviceId) return null;
  return (await fleet.store.getBoxByDeviceId(deviceId))?.clinicId ?? null;
}

/** Parse one byte range of a Range header against a size: [start, end] inclusive, or 'bad'. */
export function parseRange(header: string, size: number): [number, number] | 'bad' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'bad';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'bad';
  return [start, end];
}

export function voicemailAudioRoute(app: FastifyInstance, fleet: Fleet): void {
  app.get<{ Params: { id: string } }>(
    '/api/v1/voicemail/:id/audio',
    {
      schema: {
        tags: ['voicemail'],
        summary: 'a stored voicemail as audio/wav (Range supported); clinic users: their clinic only',
        params: Type.Object({ id: Type.String({ format: 'uuid', description: 'voicemail id' }) }),
        response: { 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema, 416: ErrorBodySchema },
      },
      preHandler: requireSession,
    },
    async (req, reply) => {
      const caller = req.caller as Caller;
      const id = req.params.id;
      if (!UUID.test(id)) {
        throw new HttpError(400, 'ValidationFailed', `voicemail id ${JSON.stringify(id.slice(0, 80))} is not a UUID`, {
          field: 'id',
          value: id.slice(0, 80),
          accepted: 'a voicemail id (UUID)',
        });
      }
      const dir = fleet.config.voicemail.dir;
      let deviceId: string | undefined;
      if (caller.role === 'clinic') {
        const boxes = await fleet.store.listBoxes({ clinicId: caller.clinicId as string });
        deviceId = await voicemailDevice(
          dir,
          id,
          boxes.flatMap((b) => (b.deviceId ? [b.deviceId] : [])),
        );
        if (!deviceId && (await voicemailDevice(dir, id))) {
          throw new HttpError(403, 'NotAuthorized', `voicemail ${id} is not of your clinic`);
        }
      } else {
        deviceId = await voicemailDevice(dir, id);
      }
      if (!deviceId) throw new HttpError(404, 'NotFound', `no stored voicemail ${id}`);
      const audio = fleet.patient.openBytes(await readFile(join(dir, deviceId, `${id}.wav`)));
      reply.header('accept-ranges', 'bytes').header('cache-control', 'private, no-store').type('audio/wav');
      const range = req.headers.range;
      if (!range) return reply.header('content-length', audio.length).send(audio);
      const r = parseRange(range, audio.length);
      if (r === 'bad') {
        reply.header('content-range', `bytes */${audio.length}`);
        throw new HttpError(
          416,
          'RangeNotSatisfiable',
          `range ${range.slice(0, 60)} is outside the ${audio.length} bytes`,
          {
            field: 'range',
            value: range.slice(0, 60),
            accepted: `bytes=<start>-<end> within 0-${audio.length - 1}`,
          },
        );
      }
      const [start, end] = r;
      return reply
        .code(206)
        .header('content-range', `bytes ${start}-${end}/${audio.length}`)
        .header('content-length', end - start + 1)
        .send(audio.subarray(start, end + 1));
    },
  );
}
