/**
 * Ops methods of the call figures, the stored telemetry and the CSV exports
 * (fleet/figures), part of the ops API: OPS_METHODS in ./ops.ts includes
 * them, so the CLI, the HTTP API and the dashboard call them like the
 * others. Definitions of the figures: docs/FIGURES.md.
 *
 * A clinic is named by its id or by its exact name (`clinic`); a name two
 * clinics share is refused with the candidates listed.
 *
 * Dates: `YYYY-MM-DD` is a date on the clinic's wall clock (in its IANA
 * time zone); `to` is inclusive (the whole day). Exports also take an ISO
 * 8601 instant with zone.
 */
import type { TSchema } from '@sinclair/typebox';
import { Nullable, Strict, Timestamp, Type } from '../schema.js';
import type { MethodSpec } from './rpc.js';

type Role = 'viewer' | 'operator' | 'admin';
interface FiguresOpsSpec<P extends TSchema = TSchema, R extends TSchema = TSchema> extends MethodSpec<P, R> {
  role: Role;
  /** clinic: a clinic user may call it for its own clinic (ClinicScope in ./ops.ts). */
  clinic?: 'clinic';
}
function op<P extends TSchema, R extends TSchema>(spec: FiguresOpsSpec<P, R>): FiguresOpsSpec<P, R> {
  return spec;
}

const DATE_PATTERN = '^\\d{4}-\\d{2}-\\d{2}$';
const DATE_OR_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$';

const ClinicRef = () => Type.String({ minLength: 1, maxLength: 120, description: 'clinic id or exact clinic name' });
const BoxRef = () => Type.String({ minLength: 3, maxLength: 64, description: 'serial (upper case) or device id' });
const LocalDate = (what: string) =>
  Type.String({ pattern: DATE_PATTERN, description: `${what} (YYYY-MM-DD, on the clinic's wall clock)` });
const DateOrTime = (what: string) =>
  Type.String({
    pattern: DATE_OR_TIME_PATTERN,
    description: `${what}: YYYY-MM-DD (the clinic's wall clock; UTC without a clinic) or an ISO 8601 time with zone`,
  });

/** The smallest, largest and default answer of the bucket grains. */
export const FIGURE_BUCKETS = ['hour', 'day', 'week'] as const;
export type FigureBucket = (typeof FIGURE_BUCKETS)[number];

/**
 * Upper bounds (seconds, inclusive) of the answer-time histogram; a last bucket holds everything longer.
 * Fixed: changing them changes what stored rollups mean (a rebuild recomputes them).
 */
export const ANSWER_BUCKETS_S = [5, 10, 15, 20, 25, 30, 40, 50, 60, 90, 120, 180, 300] as const;

/** Per-clinic targets of the figures, with their defaults and ranges. */
export const FigureTargetsSchema = Strict({
  serviceLevelTargetS: Type.Integer({
    minimum: 1,
    maximum: 600,
    default: 30,
    description: 'service level: the share of calls answered within this many seconds',
  }),
  shortAbandonS: Type.Integer({
    minimum: 0,
    maximum: 120,
    default: 10,
    description: 'an abandoned call that rang less than this many seconds is a short abandon (reported apart)',
  }),
  repeatWindowH: Type.Integer({
    minimum: 1,
    maximum: 720,
    default: 24,
    description: 'a call from a number that called this clinic within this many hours is a repeat call',
  }),
});

/** The figures of one bucket (or of the whole range). */
export const FiguresSchema = Type.Object({
  offered: Type.Integer({ description: 'calls that rang (every ended call)' }),
  answered: Type.Integer({ description: 'answered by a person' }),
  abandoned: Type.Integer({
    description: 'the caller hung up while it rang (the box outcome abandoned), short ones included',
  }),
  shortAbandoned: Type.Integer({ description: 'abandoned after ringing less than shortAbandonS' }),
  missed: Type.Integer({ description: 'rang out unanswered' }),
  rolledOver: Type.Integer({ description: 'sent to the answering service' }),
  voicemail: Type.Integer({ description: 'answered by the box for a voicemail (recorded or failed)' }),
  voicemailFailed: Type.Integer({ description: 'voicemail whose recording was lost' }),
  answeredInTarget: Type.Integer({ description: 'answered within serviceLevelTargetS' }),
  repeatCalls: Type.Integer({ description: 'calls from a number that called within repeatWindowH' }),
  followupSmsSent: Type.Integer(),
  followupSmsFailed: Type.Integer(),
  asaS: Nullable(Type.Number({ description: 'average speed of answer, seconds (null: none answered)' })),
  p90AnswerS: Nullable(
    Type.Number({ description: 'upper bound of the histogram bucket holding the 90th percentile answer time' }),
  ),
  serviceLevel: Nullable(Type.Number({ description: 'answeredInTarget / (offered - shortAbandoned), 0..1' })),
  abandonRate: Nullable(
    Type.Number({ description: '(abandoned - shortAbandoned) / (offered - shortAbandoned), 0..1' }),
  ),
  answerHistogram: Type.Array(Type.Integer(), {
    description: `answered calls per answer-time bucket (upper bounds ${ANSWER_BUCKETS_S.join(', ')} s, then longer)`,
  }),
});

const ClinicBrief = Type.Object({ id: Type.String(), name: Type.String(), timezone: Type.String() });

export const TelemetryPointSchema = Type.Object({
  at: Type.String({ description: 'when the box took it (its clock)' }),
  receivedAt: Type.String(),
  softwareVersion: Type.String(),
  uptimeS: Type.Integer(),
  modemState: Type.String(),
  signalDbm: Nullable(Type.Integer()),
  registration: Type.String(),
  operator: Nullable(Type.String()),
  simPresent: Type.Boolean(),
  freeDiskBytes: Type.Integer(),
  outboxDepth: Type.Integer(),
  voicemailsPending: Type.Integer(),
  configVersion: Nullable(Type.Integer()),
});

const ExportParams = Strict({
  clinic: Type.Optional(ClinicRef()),
  from: DateOrTime('from (inclusive)'),
  to: DateOrTime('to (a date: through its end; a time: exclusive)'),
  after: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'cursor: `next` of the page before' })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 5000, description: 'rows at most (default 2000, at most 5000)' }),
  ),
});
const ExportResult = Strict({
  csv: Type.String({ description: 'RFC 4180: header line, CRLF line ends, fields quoted when needed' }),
  rows: Type.Integer({ minimum: 0 }),
  next: Nullable(Type.String({ description: 'cursor of the next page; null: this was the last' })),
  numbers: Type.Union([Type.Literal('clear'), Type.Literal('masked')], {
    description: 'caller numbers in clear (operator, admin) or masked to their last 4 digits (viewer)',
  }),
});

const ZERO = {
  offered: 0,
  answered: 0,
  abandoned: 0,
  shortAbandoned: 0,
  missed: 0,
  rolledOver: 0,
  voicemail: 0,
  voicemailFailed: 0,
  answeredInTarget: 0,
  repeatCalls: 0,
  followupSmsSent: 0,
  followupSmsFailed: 0,
  asaS: null,
  p90AnswerS: null,
  serviceLevel: null,
  abandonRate: null,
  answerHistogram: ANSWER_BUCKETS_S.map(() => 0).concat(0),
};
const EXAMPLE_FIGURES = {
  ...ZERO,
  offered: 10,
  answered: 7,
  abandoned: 2,
  shortAbandoned: 1,
  missed: 1,
  answeredInTarget: 6,
  repeatCalls: 1,
  asaS: 14.3,
  p90AnswerS: 40,
  serviceLevel: 6 / 9,
  abandonRate: 1 / 9,
  answerHistogram: [1, 2, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
};
const EXAMPLE_CLINIC = { id: '0192f0c4-1c2a-7b3e-9a55-3f1e2d4c5b6a', name: 'Main St', timezone: 'America/New_York' };
const EXAMPLE_TARGETS = { serviceLevelTargetS: 30, shortAbandonS: 10, repeatWindowH: 24 };

export const FIGURES_OPS_METHODS = {
  'figures.clinic': op({
    role: 'viewer',
    clinic: 'clinic',
    description:
      "a clinic's call figures per hour, day or week (on its wall clock; weeks start on Monday), every bucket of the range (empty ones zero), and the totals",
    params: Strict({
      clinic: ClinicRef(),
      from: LocalDate('first day'),
      to: LocalDate('last day (inclusive)'),
      bucket: Type.Optional(
        Type.Union(
          FIGURE_BUCKETS.map((b) => Type.Literal(b)),
          { description: 'default day' },
        ),
      ),
    }),
    result: Type.Object({
      clinic: ClinicBrief,
      bucket: Type.String(),
      from: Type.String(),
      to: Type.String(),
      targets: FigureTargetsSchema,
      series: Type.Array(
        Type.Intersect([
          Type.Object({ start: Type.String({ description: 'bucket start on the wall clock, YYYY-MM-DDTHH:00' }) }),
          FiguresSchema,
        ]),
      ),
      totals: FiguresSchema,
    }),
    example: {
      params: { clinic: 'Main St', from: '2026-11-23', to: '2026-11-23', bucket: 'day' },
      result: {
        clinic: EXAMPLE_CLINIC,
        bucket: 'day',
        from: '2026-11-23',
        to: '2026-11-23',
        targets: EXAMPLE_TARGETS,
        series: [{ start: '2026-11-23T00:00', ...EXAMPLE_FIGURES }],
        totals: EXAMPLE_FIGURES,
      },
    },
  }),
  'figures.heatmap': op({
    role: 'viewer',
    clinic: 'clinic',
    description:
      "calls offered (and answered) per weekday and hour over the last weeks, on the clinic's wall clock: 7 rows (Monday first) of 24 hours",
    params: Strict({
      clinic: ClinicRef(),
      weeks: Type.Optional(Type.Integer({ minimum: 1, maximum: 104, description: 'default 8' })),
      to: Type.Optional(LocalDate('last day (default today)')),
    }),
    result: Type.Object({
      clinic: ClinicBrief,
      from: Type.String(),
      to: Type.String(),
      weeks: Type.Integer(),
      offered: Type.Array(Type.Array(Type.Integer(), { minItems: 24, maxItems: 24 }), { minItems: 7, maxItems: 7 }),
      answered: Type.Array(Type.Array(Type.Integer(), { minItems: 24, maxItems: 24 }), { minItems: 7, maxItems: 7 }),
      max: Type.Integer({ description: 'the largest offered cell' }),
    }),
    example: {
      params: { clinic: 'Main St', weeks: 4 },
      result: {
        clinic: EXAMPLE_CLINIC,
        from: '2026-10-30',
        to: '2026-11-26',
        weeks: 4,
        offered: Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => 0)),
        answered: Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => 0)),
        max: 0,
      },
    },
  }),
  'figures.targets.get': op({
    role: 'viewer',
    clinic: 'clinic',
    description: "a clinic's figure targets (defaults filled in)",
    params: Strict({ clinic: ClinicRef() }),
    result: FigureTargetsSchema,
    example: { params: { clinic: 'Main St' }, result: EXAMPLE_TARGETS },
  }),
  'figures.targets.set': op({
    role: 'operator',
    description:
      "change a clinic's figure targets (the fields given; the others kept). They apply to calls counted from now on; figures.rebuild applies them to the past",
    params: Strict({
      clinic: ClinicRef(),
      serviceLevelTargetS: Type.Optional(FigureTargetsSchema.properties.serviceLevelTargetS),
      shortAbandonS: Type.Optional(FigureTargetsSchema.properties.shortAbandonS),
      repeatWindowH: Type.Optional(FigureTargetsSchema.properties.repeatWindowH),
    }),
    result: FigureTargetsSchema,
    example: {
      params: { clinic: 'Main St', serviceLevelTargetS: 20 },
      result: { ...EXAMPLE_TARGETS, serviceLevelTargetS: 20 },
    },
  }),
  'figures.rebuild': op({
    role: 'admin',
    description:
      'recompute every rollup from the stored events (with the clinics and targets of now), logging its progress; the figures read empty-then-growing meanwhile',
    params: Strict({}),
    result: Strict({
      events: Type.Integer({ minimum: 0, description: 'stored events read' }),
      calls: Type.Integer({ minimum: 0, description: 'calls counted' }),
      ms: Type.Integer({ minimum: 0 }),
    }),
    example: { params: {}, result: { events: 36500, calls: 36500, ms: 5400 } },
  }),
  'telemetry.history': op({
    role: 'viewer',
    description: "a box's stored telemetry, newest first (kept telemetry.retentionDays)",
    params: Strict({
      box: BoxRef(),
      from: Type.Optional(Timestamp('taken at or after')),
      to: Type.Optional(Timestamp('taken before')),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, description: 'default 500' })),
    }),
    result: Type.Array(TelemetryPointSchema),
    example: {
      params: { box: 'CB-0001', limit: 1 },
      result: [
        {
          at: '2026-11-26T10:00:00.000Z',
          receivedAt: '2026-11-26T10:00:00.120Z',
          softwareVersion: '1.0.0',
          uptimeS: 3600,
          modemState: 'ready',
          signalDbm: -71,
          registration: 'home',
          operator: 'Telekom.de',
          simPresent: true,
          freeDiskBytes: 1_200_000_000,
          outboxDepth: 0,
          voicemailsPending: 0,
          configVersion: 3,
        },
      ],
    },
  }),
  'export.calls': op({
    role: 'viewer',
    description:
      'calls (one row each, by start time) as CSV; caller numbers in clear for operator and admin, masked to the last 4 digits for viewer',
    params: ExportParams,
    result: ExportResult,
    example: {
      params: { clinic: 'Main St', from: '2026-11-01', to: '2026-11-30' },
      result: {
        csv: 'call_id,clinic,box,started_at,local_time,outcome,ring_s,answer_s,talk_s,repeat,in_hours,followup_sms,number\r\n',
        rows: 0,
        next: null,
        numbers: 'clear',
      },
    },
  }),
  'export.events': op({
    role: 'viewer',
    description: 'stored events (by time on the box) as CSV, the body as JSON; numbers as export.calls',
    params: ExportParams,
    result: ExportResult,
    example: {
      params: { from: '2026-11-26', to: '2026-11-26' },
      result: { csv: 'id,at,received_at,box,device_id,seq,type,body\r\n', rows: 0, next: null, numbers: 'masked' },
    },
  }),
  'export.alerts': op({
    role: 'viewer',
    description: 'alerts (by when they opened) as CSV; numbers in their text as export.calls',
    params: ExportParams,
    result: ExportResult,
    example: {
      params: { clinic: 'Main St', from: '2026-11-01', to: '2026-11-30' },
      result: {
        csv: 'id,clinic,condition,severity,state,short_code,first_at,last_at,occurrences,acked_at,acked_by,resolved_at,resolved_by,text\r\n',
        rows: 0,
        next: null,
        numbers: 'clear',
      },
    },
  }),
} as const;

export type FiguresOpsMethod = keyof typeof FIGURES_OPS_METHODS;
