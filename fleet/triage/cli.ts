/**
 * `fleet triage …`: voicemail triage through the ops API.
 *   fleet triage phrases <clinic>                         the clinic's urgent phrases (its own or the defaults)
 *   fleet triage phrases <clinic> --add "chest pain" [--threshold 1e-30]   add or change one
 *   fleet triage phrases <clinic> --remove "stroke"       remove one
 *   fleet triage phrases <clinic> --set FILE              replace the list (YAML or JSON: [{phrase, threshold}])
 *   fleet triage phrases <clinic> --reset                 back to the defaults
 *   fleet triage show <voicemail>                         one voicemail's triage
 *   fleet triage list [--clinic ID] [--box B] [--attention] [--limit N]
 * Triage is keyword spotting: it shows the phrases spotted and their times, never a transcript.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { OpsClient } from '../ops-client.js';
import type { UrgentPhrase } from './phrases.js';

interface PhrasesAnswer {
  clinicId: string;
  own: boolean;
  phrases: UrgentPhrase[];
}

interface Shown {
  voicemailId: string;
  deviceId: string;
  state: string;
  urgent: boolean | null;
  attention: boolean;
  phrases: { phrase: string; startS: number; endS: number; score: number }[];
  stressScore: number | null;
  reasons: string[];
  model: string | null;
  durationMs: number | null;
  triageMs: number | null;
  alertId: string | null;
  storedAt: string;
  triagedAt: string | null;
}

function verdict(r: Shown): string {
  if (r.state === 'pending') return 'pending';
  if (r.state === 'unavailable') return 'NOT TRIAGED (needs attention)';
  return r.urgent ? 'URGENT' : 'routine';
}

function describe(r: Shown): string {
  return [
    `voicemail ${r.voicemailId} (box ${r.deviceId}, stored ${r.storedAt}): ${verdict(r)}`,
    ...r.phrases.map(
      (p) => `  "${p.phrase}" at ${p.startS.toFixed(1)}-${p.endS.toFixed(1)} s (score ${p.score.toFixed(2)})`,
    ),
    `  stress score: ${r.stressScore ?? '-'}`,
    ...r.reasons.map((x) => `  - ${x}`),
    `  ${r.model ?? '-'}; ${r.durationMs === null ? '-' : `${(r.durationMs / 1000).toFixed(1)} s of audio`}; triaged in ${r.triageMs ?? '-'} ms at ${r.triagedAt ?? '-'}${r.alertId ? `; alert ${r.alertId}` : ''}`,
  ].join('\n');
}

function phraseTable(a: PhrasesAnswer): string {
  return [
    `urgent phrases of clinic ${a.clinicId} (${a.own ? 'its own' : 'the defaults'}):`,
    ...a.phrases.map((p) => `  ${p.phrase.padEnd(20)} ${p.threshold.toExponential()}`),
  ].join('\n');
}

function readList(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CallboxError(ErrorCode.ValidationFailed, `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new CallboxError(ErrorCode.ValidationFailed, `${file} is not valid YAML or JSON: ${(e as Error).message}`);
  }
}

export function addTriageCommands(
  program: Command,
  connect: () => Promise<OpsClient>,
  print: (value: unknown, human: () => string) => void,
): void {
  const triage = program.command('triage').description('urgency triage of voicemail (keyword spotting, stress cues)');
  triage
    .command('phrases <clinic>')
    .description("show or change a clinic's urgent phrases")
    .option('--add <phrase>', 'add a phrase, or change its threshold')
    .option('--threshold <t>', 'threshold of --add (1e-80..1; smaller finds more)', '1e-30')
    .option('--remove <phrase>', 'remove a phrase')
    .option('--set <file>', 'replace the whole list (YAML or JSON: [{phrase, threshold}])')
    .option('--reset', 'back to the default list')
    .action(
      async (
        clinicId: string,
        o: { add?: string; threshold: string; remove?: string; set?: string; reset?: boolean },
      ) => {
        const ops = await connect();
        let phrases: unknown;
        if (o.reset) phrases = null;
        else if (o.set) phrases = readList(o.set);
        else if (o.add || o.remove) {
          const now = (await ops.call('triage.phrases.get', { clinicId })) as PhrasesAnswer;
          const list = now.phrases.filter((p) => p.phrase !== o.add && p.phrase !== o.remove);
          if (o.remove && list.length === now.phrases.length) {
            throw new CallboxError(ErrorCode.NotFound, `clinic ${clinicId} has no urgent phrase "${o.remove}"`);
          }
          if (o.add) list.push({ phrase: o.add, threshold: Number(o.threshold) });
          phrases = list;
        } else {
          const r = (await ops.call('triage.phrases.get', { clinicId })) as PhrasesAnswer;
          print(r, () => phraseTable(r));
          return;
        }
        const r = (await ops.call(
          'triage.phrases.set',
          phrases === null ? { clinicId, reset: true } : { clinicId, phrases: phrases as never },
        )) as PhrasesAnswer;
        print(r, () => phraseTable(r));
      },
    );
  triage
    .command('show <voicemail>')
    .description("one voicemail's triage (phrases spotted with their times, stress score, reasons)")
    .action(async (voicemailId: string) => {
      const r = (await (await connect()).call('voicemail.triage', { voicemailId })) as Shown;
      print(r, () => describe(r));
    });
  triage
    .command('list')
    .description('stored voicemails with their triage, newest first')
    .option('--clinic <id>', 'of one clinic')
    .option('--box <box>', 'of one box')
    .option('--attention', 'only those needing attention (urgent or not triaged)')
    .option('--limit <n>', 'at most', '50')
    .action(async (o: { clinic?: string; box?: string; attention?: boolean; limit: string }) => {
      const rows = (await (
        await connect()
      ).call('triage.list', {
        ...(o.clinic ? { clinicId: o.clinic } : {}),
        ...(o.box ? { box: o.box } : {}),
        ...(o.attention ? { attention: true } : {}),
        limit: Number(o.limit),
      })) as Shown[];
      print(rows, () =>
        rows.length === 0
          ? '(none)'
          : rows
              .map(
                (r) =>
                  `${r.storedAt}  ${r.voicemailId}  ${r.deviceId}  ${verdict(r)}${r.phrases.length ? `  ${[...new Set(r.phrases.map((p) => p.phrase))].join(', ')}` : ''}`,
              )
              .join('\n'),
      );
    });
}
