/**
 * Over-the-air updates: what the fleet and the boxes say to each other about a release.
 *
 *   callbox/v1/<id>/update/offer     fleet -> box, retained   UpdateOffer: the release this box should run
 *                                                              (an empty retained message withdraws it)
 *   callbox/v1/<id>/update/progress  box -> fleet, retained   UpdateProgress: where the box is with it
 *   fleet/req 'update.chunk'         box -> fleet             one range of the release tarball (base64)
 *
 * The box downloads the tarball in ranges it asks for (resumable: it asks again from what it has on disk after
 * a restart), verifies the signature and every file against the signed manifest (shared/release-signature.ts),
 * installs it beside the running release (device/update/slots.ts), restarts, and reports `healthy` once its health
 * checks pass, or `rolled_back` with the reason when they did not in time. The ops methods (RELEASE_OPS_METHODS)
 * store signed releases and run staged rollouts (fleet/updates).
 */
import type { TSchema } from '@sinclair/typebox';
import { Nullable, SchemaVersion, type Static, Strict, Timestamp, Type } from '../schema.js';
import type { MethodSpec } from './rpc.js';

export const VERSION_PATTERN = '^[0-9]+\\.[0-9]+\\.[0-9]+$';
const Version = (description = 'release version x.y.z') => Type.String({ pattern: VERSION_PATTERN, description });
const Sha256 = (description: string) => Type.String({ pattern: '^[0-9a-f]{64}$', description });
const RolloutId = () => Type.String({ minLength: 1, maxLength: 64, description: 'rollout id' });

/** Largest range a box may ask for: 48 KiB encodes to 64 KiB of base64, well under the broker's payload limit. */
export const UPDATE_MAX_CHUNK_BYTES = 48 * 1024;

/** Per-box progress of a rollout, in the order a good update goes through them. */
export const UPDATE_STATES = [
  'offered',
  'downloading',
  'verified',
  'installed',
  'healthy',
  'rolled_back',
  'failed',
] as const;
export type UpdateStateName = (typeof UPDATE_STATES)[number];
/** States that count against a rollout's failure threshold. */
export const UPDATE_FAILURES: readonly UpdateStateName[] = ['rolled_back', 'failed'];

export const UpdateOfferSchema = Strict({
  v: SchemaVersion(1),
  rolloutId: RolloutId(),
  program: Type.Literal('device'),
  version: Version(),
  totalBytes: Type.Integer({ minimum: 1, description: 'size of the release tarball' }),
  sha256: Sha256('sha256 of the whole tarball (transfer check; the signed manifest covers every file)'),
  at: Timestamp(),
});
export type UpdateOffer = Static<typeof UpdateOfferSchema>;

export const UpdateProgressSchema = Strict({
  v: SchemaVersion(1),
  rolloutId: RolloutId(),
  version: Version('the offered release this report is about'),
  state: Type.Union(
    UPDATE_STATES.filter((s) => s !== 'offered').map((s) => Type.Literal(s)),
    { description: 'downloading, verified, installed, healthy, rolled_back or failed' },
  ),
  running: Nullable(Version('the release the box runs now')),
  bytes: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes of the tarball on the box' })),
  totalBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  reason: Type.Optional(Type.String({ maxLength: 2000, description: 'why failed or rolled back' })),
  at: Timestamp(),
});
export type UpdateProgress = Static<typeof UpdateProgressSchema>;

export const UPDATE_CHUNK_METHOD = {
  description: 'a range of an offered release tarball (the box resumes from what it has on disk)',
  params: Strict({
    version: Version(),
    offset: Type.Integer({ minimum: 0 }),
    length: Type.Integer({ minimum: 1, maximum: UPDATE_MAX_CHUNK_BYTES }),
  }),
  result: Strict({
    offset: Type.Integer({ minimum: 0 }),
    totalBytes: Type.Integer({ minimum: 1 }),
    data: Type.String({ description: 'base64 of the bytes from offset (shorter at the end)' }),
  }),
  example: {
    params: { version: '1.2.0', offset: 0, length: 32768 },
    result: { offset: 0, totalBytes: 1_048_576, data: 'H4sIAAAAAAAAA+...' },
  },
} satisfies MethodSpec;

// ---- ops -------------------------------------------------------------------------------------

type Role = 'viewer' | 'operator' | 'admin';
interface ReleaseOpsSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: Role;
}
function op<P extends TSchema, R extends TSchema>(spec: ReleaseOpsSpec<P, R>): ReleaseOpsSpec<P, R> {
  return spec;
}

export const ReleaseSchema = Type.Object({
  version: Type.String(),
  program: Type.String(),
  arch: Type.String(),
  keyId: Type.String({ description: 'the trusted key that signed it' }),
  sha256: Type.String(),
  totalBytes: Type.Integer(),
  receivedBytes: Type.Integer(),
  state: Type.Union([Type.Literal('uploading'), Type.Literal('ready')]),
  createdBy: Type.String(),
  createdAt: Type.String(),
});
export type ReleaseInfo = Static<typeof ReleaseSchema>;

export const RolloutBoxSchema = Type.Object({
  deviceId: Type.String(),
  /** Position by the stable hash (0 first); a stage of p% includes the first ceil(p% of n). */
  rank: Type.Integer(),
  included: Type.Boolean({ description: 'in a stage reached so far' }),
  state: Nullable(Type.String({ description: 'offered … healthy, rolled_back, failed; null: not offered yet' })),
  running: Nullable(Type.String()),
  bytes: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
  updatedAt: Nullable(Type.String()),
});

export const RolloutSchema = Type.Object({
  id: Type.String(),
  version: Type.String(),
  stages: Type.Array(Type.Integer()),
  stage: Type.Integer({ description: 'index into stages of the stage reached' }),
  state: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('done')]),
  pausedReason: Nullable(Type.String()),
  failureMaxCount: Type.Integer(),
  failureMaxShare: Type.Number(),
  createdBy: Type.String(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export type RolloutInfo = Static<typeof RolloutSchema>;

const RolloutStatusSchema = Type.Object({
  rollout: RolloutSchema,
  counts: Type.Record(Type.String(), Type.Integer()),
  boxes: Type.Array(RolloutBoxSchema),
});
export type RolloutStatus = Static<typeof RolloutStatusSchema>;

const SHA = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const EXAMPLE_RELEASE: ReleaseInfo = {
  version: '1.2.0',
  program: 'device',
  arch: 'arm64',
  keyId: '0123456789abcdef',
  sha256: SHA,
  totalBytes: 31_457_280,
  receivedBytes: 0,
  state: 'uploading',
  createdBy: 'ops:alice',
  createdAt: '2026-11-26T10:00:00.000Z',
};

const EXAMPLE_ROLLOUT: RolloutInfo = {
  id: '0193b2a4-1a00-7e65-8d44-0f5b6c7d8e9f',
  version: '1.2.0',
  stages: [10, 50, 100],
  stage: 0,
  state: 'running',
  pausedReason: null,
  failureMaxCount: 1,
  failureMaxShare: 0.2,
  createdBy: 'ops:alice',
  createdAt: '2026-11-26T10:00:00.000Z',
  updatedAt: '2026-11-26T10:00:00.000Z',
};

export const RELEASE_OPS_METHODS = {
  'releases.create': op({
    role: 'admin',
    description:
      'start storing a signed release: its MANIFEST.json and signature (checked against the fleet’s trusted keys now), the tarball’s size and sha256; the bytes follow with releases.chunk',
    params: Strict({
      manifest: Type.String({ minLength: 2, maxLength: 8_000_000, description: 'MANIFEST.json, exactly as signed' }),
      signature: Type.String({ minLength: 1, maxLength: 200, description: 'MANIFEST.json.sig (base64)' }),
      sha256: Sha256('sha256 of the release tarball'),
      totalBytes: Type.Integer({ minimum: 1, maximum: 2 ** 31 }),
    }),
    result: ReleaseSchema,
    example: {
      params: {
        manifest: '{"program":"device","version":"1.2.0","arch":"arm64","files":{}}',
        signature: 'bWFuaWZlc3Qgc2lnbmF0dXJl',
        sha256: SHA,
        totalBytes: 31_457_280,
      },
      result: EXAMPLE_RELEASE,
    },
  }),
  'releases.chunk': op({
    role: 'admin',
    description:
      'the next bytes of a release being uploaded, at `offset` = the bytes received so far (a repeat is answered, not written twice); after the last the fleet checks the sha256, unpacks it and verifies every file against the signed manifest',
    params: Strict({
      version: Version(),
      offset: Type.Integer({ minimum: 0 }),
      data: Type.String({ minLength: 1, maxLength: 180_000, description: 'base64, at most 128 KiB of bytes' }),
    }),
    result: ReleaseSchema,
    example: {
      params: { version: '1.2.0', offset: 0, data: 'H4sIAAAAAAAAA+3' },
      result: { ...EXAMPLE_RELEASE, receivedBytes: 131_072 },
    },
  }),
  'releases.list': op({
    role: 'viewer',
    description: 'stored releases, newest first',
    params: Strict({}),
    result: Type.Array(ReleaseSchema),
    example: { params: {}, result: [{ ...EXAMPLE_RELEASE, state: 'ready', receivedBytes: 31_457_280 }] },
  }),
  'rollouts.start': op({
    role: 'admin',
    description:
      'offer a stored release to a set of boxes in stages: each stage a percentage of the set, chosen by a stable hash of the device id (the same boxes for the same percentage); it pauses by itself once failures pass failureMaxCount or failureMaxShare of the boxes offered',
    params: Strict({
      version: Version(),
      boxes: Type.Optional(
        Type.Array(Type.String({ minLength: 3, maxLength: 64 }), {
          minItems: 1,
          maxItems: 100_000,
          description: 'serials or device ids; default every approved box',
        }),
      ),
      stages: Type.Optional(
        Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), {
          minItems: 1,
          maxItems: 20,
          description: 'increasing percentages ending at 100; default [10, 50, 100]',
        }),
      ),
      failureMaxCount: Type.Optional(
        Type.Integer({ minimum: 1, description: 'pause at this many failures (default 1)' }),
      ),
      failureMaxShare: Type.Optional(
        Type.Number({ minimum: 0, maximum: 1, description: 'or at this share of the boxes offered (default 0.2)' }),
      ),
    }),
    result: RolloutSchema,
    example: { params: { version: '1.2.0', stages: [10, 50, 100] }, result: EXAMPLE_ROLLOUT },
  }),
  'rollouts.list': op({
    role: 'viewer',
    description: 'rollouts, newest first',
    params: Strict({}),
    result: Type.Array(RolloutSchema),
    example: { params: {}, result: [EXAMPLE_ROLLOUT] },
  }),
  'rollouts.status': op({
    role: 'viewer',
    description: 'a rollout with the progress of every box (default: the newest rollout)',
    params: Strict({ id: Type.Optional(RolloutId()) }),
    result: RolloutStatusSchema,
    example: { params: {}, result: { rollout: EXAMPLE_ROLLOUT, counts: { healthy: 1 }, boxes: [] } },
  }),
  'rollouts.advance': op({
    role: 'admin',
    description: 'move a running rollout to its next stage (offers the release to the boxes it adds)',
    params: Strict({ id: RolloutId() }),
    result: RolloutSchema,
    example: { params: { id: EXAMPLE_ROLLOUT.id }, result: { ...EXAMPLE_ROLLOUT, stage: 1 } },
  }),
  'rollouts.pause': op({
    role: 'operator',
    description: 'stop offering the release: offers to boxes that have not installed it yet are withdrawn',
    params: Strict({ id: RolloutId(), reason: Type.Optional(Type.String({ maxLength: 500 })) }),
    result: RolloutSchema,
    example: { params: { id: EXAMPLE_ROLLOUT.id }, result: { ...EXAMPLE_ROLLOUT, state: 'paused' } },
  }),
  'rollouts.resume': op({
    role: 'admin',
    description: 'resume a paused rollout at its stage (the offers are made again)',
    params: Strict({ id: RolloutId() }),
    result: RolloutSchema,
    example: { params: { id: EXAMPLE_ROLLOUT.id }, result: EXAMPLE_ROLLOUT },
  }),
} as const;
