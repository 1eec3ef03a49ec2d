/**
 * The CLI's commands for the call figures, telemetry and exports (through
 * the ops API, FIGURES_OPS_METHODS); a clinic is its id or exact name:
 *   fleet figures <clinic> [--from D] [--to D] [--bucket hour|day|week] [--heatmap [--weeks N]]
 *   fleet targets <clinic> [--service-level-s N] [--short-abandon-s N] [--repeat-window-h N]
 *   fleet rebuild-figures
 *   fleet telemetry <box> [--from T] [--to T] [--limit N]
 *   fleet export calls|events|alerts [--clinic C] --from D --to D > file.csv
 */
import type { Command } from 'commander';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { OpsClient } from '../ops-client.js';
import { addDays } from './math.js';

type Print = (value: unknown, human: () => string) => void;

function int(option: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) {
    throw new CallboxError(ErrorCode.ValidationFailed, `${option}: "${v}" is not a whole number`);
  }
  return n;
}

const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);
const sec = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)}s`);

interface Row {
  start?: string;
  offered: number;
  answered: number;
  abandoned: number;
  shortAbandoned: number;
  missed: number;
  rolledOver: number;
  voicemail: number;
  repeatCalls: number;
  followupSmsSent: number;
  asaS: number | null;
  p90AnswerS: number | null;
  serviceLevel: number | null;
  abandonRate: number | null;
}

function figuresTable(rows: Row[]): string {
  const head = [
    'start',
    'offered',
    'answered',
    'abandoned',
    'short',
    'missed',
    'rolled',
    'voicemail',
    'ASA',
    'p90',
    'SL',
    'abandon',
    'repeat',
    'sms',
  ];
  const lines = rows.map((r) =>
    [
      r.start ?? 'total',
      r.offered,
      r.answered,
      r.abandoned,
      r.shortAbandoned,
      r.missed,
      r.rolledOver,
      r.voicemail,
      sec(r.asaS),
      r.p90AnswerS === null ? '-' : `${r.p90AnswerS}s`,
      pct(r.serviceLevel),
      pct(r.abandonRate),
      r.repeatCalls,
      r.followupSmsSent,
    ].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  return [head, ...lines]
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function addFiguresCommands(
  program: Command,
  connect: () => Promise<OpsClient>,
  print: Print,
  out: (s: string) => void,
): void {
  program
    .command('figures <clinic>')
    .description("a clinic's call figures (id or exact name; dates on its wall clock; default the last 7 days by day)")
    .option('--from <date>', 'first day, YYYY-MM-DD (default: 6 days before --to)')
    .option('--to <date>', 'last day, YYYY-MM-DD (default: today, UTC)')
    .option('--bucket <grain>', 'hour, day or week', 'day')
    .option('--heatmap', 'calls per weekday and hour instead (figures.heatmap)')
    .option('--weeks <n>', 'weeks of the heatmap', '8')
    .action(
      async (clinic: string, o: { from?: string; to?: string; bucket: string; heatmap?: boolean; weeks: string }) => {
        const c = await connect();
        if (o.heatmap) {
          const h = await c.call('figures.heatmap', {
            clinic,
            weeks: int('--weeks', o.weeks) ?? 8,
            ...(o.to ? { to: o.to } : {}),
          });
          const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
          print(h, () =>
            [
              `${h.clinic.name}: calls offered ${h.from} .. ${h.to} (${h.weeks} weeks), by weekday and hour`,
              `     ${Array.from({ length: 24 }, (_, i) => String(i).padStart(4)).join('')}`,
              ...h.offered.map((row, d) => `${days[d]}  ${row.map((v) => String(v).padStart(4)).join('')}`),
            ].join('\n'),
          );
          return;
        }
        if (!['hour', 'day', 'week'].includes(o.bucket)) {
          throw new CallboxError(ErrorCode.ValidationFailed, `--bucket: "${o.bucket}" is not one of hour, day, week`);
        }
        const to = o.to ?? new Date().toISOString().slice(0, 10);
        const from = o.from ?? addDays(to, -6);
        const r = await c.call('figures.clinic', { clinic, from, to, bucket: o.bucket as 'day' });
        print(r, () =>
          [
            `${r.clinic.name} (${r.clinic.timezone}) ${r.from} .. ${r.to} by ${r.bucket}; service level target ${r.targets.serviceLevelTargetS}s, short abandon under ${r.targets.shortAbandonS}s`,
            figuresTable([...r.series, r.totals]),
          ].join('\n'),
        );
      },
    );

  program
    .command('targets <clinic>')
    .description("a clinic's figure targets; with options, change them (figures.targets.get / figures.targets.set)")
    .option('--service-level-s <n>', 'service level: answered within this many seconds (1..600)')
    .option('--short-abandon-s <n>', 'abandoned under this many seconds is a short abandon (0..120)')
    .option('--repeat-window-h <n>', 'a call again within this many hours is a repeat call (1..720)')
    .action(async (clinic: string, o: { serviceLevelS?: string; shortAbandonS?: string; repeatWindowH?: string }) => {
      const c = await connect();
      const change = {
        ...(o.serviceLevelS === undefined ? {} : { serviceLevelTargetS: int('--service-level-s', o.serviceLevelS) }),
        ...(o.shortAbandonS === undefined ? {} : { shortAbandonS: int('--short-abandon-s', o.shortAbandonS) }),
        ...(o.repeatWindowH === undefined ? {} : { repeatWindowH: int('--repeat-window-h', o.repeatWindowH) }),
      } as Record<string, number>;
      const t =
        Object.keys(change).length === 0
          ? await c.call('figures.targets.get', { clinic })
          : await c.call('figures.targets.set', { clinic, ...change });
      print(
        t,
        () =>
          `service level within ${t.serviceLevelTargetS}s; short abandon under ${t.shortAbandonS}s; repeat within ${t.repeatWindowH}h`,
      );
    });

  program
    .command('rebuild-figures')
    .description(
      'recompute every call figure from the stored events (admin; figures.rebuild). A large store takes minutes: give --timeout (ms); the fleet finishes the rebuild even if the CLI stops waiting',
    )
    .action(async () => {
      const r = await (await connect()).call('figures.rebuild', {});
      print(r, () => `figures rebuilt: ${r.events} events, ${r.calls} calls in ${r.ms} ms`);
    });

  program
    .command('telemetry <box>')
    .description("a box's stored telemetry, newest first (telemetry.history)")
    .option('--from <time>', 'taken at or after (ISO time)')
    .option('--to <time>', 'taken before (ISO time)')
    .option('--limit <n>', 'at most', '20')
    .action(async (box: string, o: { from?: string; to?: string; limit: string }) => {
      const r = await (await connect()).call('telemetry.history', {
        box,
        ...(o.from ? { from: o.from } : {}),
        ...(o.to ? { to: o.to } : {}),
        limit: int('--limit', o.limit) ?? 20,
      });
      const cols = [
        'at',
        'signalDbm',
        'operator',
        'modemState',
        'outboxDepth',
        'freeDiskBytes',
        'softwareVersion',
      ] as const;
      print(r, () =>
        r.length === 0
          ? '(none)'
          : [cols.join('  '), ...r.map((p) => cols.map((k) => (p[k] === null ? '-' : String(p[k]))).join('  '))].join(
              '\n',
            ),
      );
    });

  const exp = program
    .command('export')
    .description('CSV (RFC 4180) of calls, events or alerts on stdout: fleet export calls --from D --to D > calls.csv');
  for (const [what, method] of [
    ['calls', 'export.calls'],
    ['events', 'export.events'],
    ['alerts', 'export.alerts'],
  ] as const) {
    exp
      .command(what)
      .description(`${what} as CSV (${method}); caller numbers in clear for operator and admin, masked for viewer`)
      .option('--clinic <clinic>', 'of one clinic (id or exact name)')
      .requiredOption('--from <when>', 'YYYY-MM-DD (the clinic wall clock; UTC without --clinic) or ISO time')
      .requiredOption('--to <when>', 'YYYY-MM-DD (through its end) or ISO time (exclusive)')
      .option('--page <n>', 'rows per request', '2000')
      .action(async (o: { clinic?: string; from: string; to: string; page: string }) => {
        const c = await connect();
        let after: string | undefined;
        let first = true;
        do {
          const r = await c.call(method, {
            ...(o.clinic ? { clinic: o.clinic } : {}),
            from: o.from,
            to: o.to,
            limit: int('--page', o.page) ?? 2000,
            ...(after ? { after } : {}),
          });
          // Every page starts with the header line (no CR or LF inside it): written once.
          out(first ? r.csv : r.csv.slice(r.csv.indexOf('\r\n') + 2));
          first = false;
          after = r.next ?? undefined;
        } while (after);
      });
  }
}
