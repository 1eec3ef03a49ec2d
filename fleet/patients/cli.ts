/**
 * `fleet calls | call | callbacks | surveys | patients fhir`, through the ops
 * API (PATIENT_OPS_METHODS):
 *   fleet calls CLINIC [--from T] [--to T] [--limit N]   the call log, newest first
 *   fleet call CALL_ID                                     one call in full
 *   fleet callbacks CLINIC [--state open|done|all]         the call-back list (open ones, oldest first)
 *   fleet callbacks CLINIC done CALL_ID [--note TEXT]      mark one done (audit log: who, when)
 *   fleet surveys CLINIC [--from T] [--to T]               survey replies counted: sent, replies, average
 *   fleet patients fhir get CLINIC                         the clinic's FHIR server (never the token)
 *   fleet patients fhir set CLINIC URL|none --token-file F set it (the token is read from a file, not argv)
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { OpsClient } from '../ops-client.js';

type Print = (value: unknown, human: () => string) => void;
type Table = (rows: Record<string, unknown>[], cols: string[]) => string;

function who(r: Record<string, unknown>): string {
  const p = r.patient as { name: string | null; birthDate: string | null } | null;
  if (p) return `${p.name ?? '?'} (${p.birthDate ?? '?'})`;
  if (r.lookup === 'several') return `several patients (${r.matches})`;
  return String(r.lookup ?? '-');
}

export function addPatientCommands(
  program: Command,
  connect: () => Promise<OpsClient>,
  print: Print,
  table: Table,
): void {
  program
    .command('calls <clinic>')
    .description('the call log of a clinic, newest first: caller, outcome, FHIR match, repeat flag, call-back')
    .option('--from <time>', 'calls started at or after (ISO time)')
    .option('--to <time>', 'calls started before (ISO time)')
    .option('--limit <n>', 'at most', '50')
    .action(async (clinicId: string, o: { from?: string; to?: string; limit: string }) => {
      const r = await (await connect()).call('calls.list', {
        clinicId,
        ...(o.from ? { from: o.from } : {}),
        ...(o.to ? { to: o.to } : {}),
        limit: Number(o.limit),
      });
      const rows = r.map((c) => ({
        ...c,
        patientShown: who(c),
        repeatFlag: c.repeat?.reason ?? '',
        callbackState: c.callback?.state ?? '',
        last: c.lastContacts.map((x) => `${x.kind} ${x.at.slice(0, 16)}${x.detail ? ` ${x.detail}` : ''}`).join(', '),
      }));
      print(r, () =>
        table(rows, [
          'startedAt',
          'callId',
          'caller',
          'outcome',
          'patientShown',
          'repeatFlag',
          'callbackState',
          'last',
        ]),
      );
    });
  program
    .command('call <callId>')
    .description('one call of the call log')
    .action(async (callId: string) => {
      const r = await (await connect()).call('calls.show', { callId });
      print(r, () => JSON.stringify(r, null, 2));
    });
  program
    .command('callbacks <clinic> [action] [callId]')
    .description('the call-back list of a clinic; `done CALL_ID` marks one done')
    .option('--state <state>', 'open (default), done or all', 'open')
    .option('--note <text>', 'with done: what was done')
    .option('--limit <n>', 'at most', '100')
    .action(
      async (
        clinicId: string,
        action: string | undefined,
        callId: string | undefined,
        o: { state: string; note?: string; limit: string },
      ) => {
        const c = await connect();
        if (action === undefined) {
          if (!['open', 'done', 'all'].includes(o.state)) {
            throw new CallboxError(ErrorCode.ValidationFailed, `--state "${o.state}": give open, done or all`);
          }
          const r = await c.call('callbacks.list', {
            clinicId,
            state: o.state as 'open' | 'done' | 'all',
            limit: Number(o.limit),
          });
          const rows = r.map((x) => ({
            ...x,
            patientShown: who({ ...x, lookup: '-' }),
            repeatFlag: x.repeat?.reason ?? '',
          }));
          print(r, () =>
            table(rows, ['createdAt', 'callId', 'caller', 'reason', 'patientShown', 'repeatFlag', 'state', 'doneBy']),
          );
          return;
        }
        if (action !== 'done' || !callId) {
          throw new CallboxError(
            ErrorCode.ValidationFailed,
            `"${action}${callId ? ` ${callId}` : ''}": the only action is \`done CALL_ID\` (fleet callbacks ${clinicId} done CALL_ID)`,
          );
        }
        const r = await c.call('callbacks.done', { callId, ...(o.note ? { note: o.note } : {}) });
        print(r, () => `call-back of call ${r.callId} done by ${r.doneBy} at ${r.doneAt}`);
      },
    );
  program
    .command('surveys <clinic>')
    .description("a clinic's satisfaction figure: surveys sent, replies, average score and distribution")
    .option('--from <time>', 'from (ISO time; default 30 days ago)')
    .option('--to <time>', 'until (ISO time; default now)')
    .action(async (clinicId: string, o: { from?: string; to?: string }) => {
      const r = await (await connect()).call('surveys.summary', {
        clinicId,
        ...(o.from ? { from: o.from } : {}),
        ...(o.to ? { to: o.to } : {}),
      });
      print(r, () =>
        [
          `surveys ${r.from} .. ${r.to}: ${r.sent} sent (${r.failed} failed), ${r.replies} replies` +
            (r.responseRate === null ? '' : ` (${Math.round(r.responseRate * 100)}%)`),
          `average ${r.average ?? '-'} of 5`,
          ...(['5', '4', '3', '2', '1'] as const).map((k) => `  ${k}: ${r.distribution[k]}`),
        ].join('\n'),
      );
    });
  const fhir = program
    .command('patients')
    .description("caller lookup in the clinics' patient records (FHIR R4)")
    .command('fhir')
    .description("a clinic's FHIR server and token");
  fhir.command('get <clinic>').action(async (clinicId: string) => {
    const r = await (await connect()).call('patients.settings.get', { clinicId });
    print(r, () => `${r.baseUrl ?? 'no FHIR server'}${r.tokenSet ? ' (token set)' : ''}`);
  });
  fhir
    .command('set <clinic> <url>')
    .description('URL: the FHIR base (https; http only to loopback), or "none" to turn the lookup off')
    .option('--token-file <file>', 'file holding the bearer token (kept encrypted by the fleet)')
    .action(async (clinicId: string, url: string, o: { tokenFile?: string }) => {
      let token: string | undefined;
      if (o.tokenFile) {
        try {
          token = readFileSync(o.tokenFile, 'utf8').trim();
        } catch (e) {
          throw new CallboxError(
            ErrorCode.ValidationFailed,
            `--token-file ${o.tokenFile} cannot be read: ${(e as Error).message}`,
          );
        }
      }
      const r = await (await connect()).call('patients.settings.set', {
        clinicId,
        baseUrl: url === 'none' ? null : url,
        ...(token ? { token } : {}),
      });
      print(r, () => `${r.baseUrl ?? 'no FHIR server'}${r.tokenSet ? ' (token set)' : ''}`);
    });
}
