/**
 * npm run bench:triage: precision and recall of "urgent" on the synthetic
 * labelled set (scripts/lib/speech-set.ts), the confusion matrix, and the
 * triage time per minute of audio.
 *
 * Honest protocol: thresholds are chosen on the tuning half (its own
 * sentences and voices, bench/triage-tune.ts) and the figures are reported on
 * the evaluation half, which shares neither wording nor voices with it.
 * Options:
 *   --defaults       evaluate the shipped thresholds (fleet/triage/phrases.ts) instead of tuning now
 *   --both-halves    also report on the tuning half (optimistic: those are the messages it was tuned on)
 *   --large          two voices per sentence and half (96 messages) instead of one (48)
 *   --stress <s>     stress score that makes a message urgent on its own (default: the fleet's default)
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { TRIAGE_DEFAULTS } from '../fleet/triage/config.js';
import { DEFAULT_PHRASES, type UrgentPhrase } from '../fleet/triage/phrases.js';
import { DEFAULT_SPOTTER } from '../fleet/triage/spotter.js';
import { triageRecording } from '../fleet/triage/triage.js';
import { type Message, makeSpeechSet } from '../scripts/lib/speech-set.js';
import { tuneThresholds } from './triage-tune.js';

const args = process.argv.slice(2);
const flag = (f: string) => args.includes(f);
const stressAt = args.includes('--stress')
  ? Number(args[args.indexOf('--stress') + 1])
  : TRIAGE_DEFAULTS.stressUrgentScore;
const out = (s = '') => process.stdout.write(`${s}\n`);

interface Row {
  m: Message;
  urgent: boolean;
  why: string;
  triageMs: number;
  durationMs: number;
}

async function evaluate(messages: Message[], phrases: UrgentPhrase[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const m of messages) {
    const r = await triageRecording(m.file, phrases, [], {
      spotter: DEFAULT_SPOTTER,
      baselineS: TRIAGE_DEFAULTS.baselineS,
      stressUrgentScore: stressAt,
    });
    const why = r.phrases.length
      ? r.phrases.map((p) => `${p.phrase}@${p.startS.toFixed(1)}s`).join(', ')
      : `stress ${r.stress.score}`;
    rows.push({ m, urgent: r.urgent, why, triageMs: r.triageMs, durationMs: r.durationMs });
  }
  return rows;
}

function report(title: string, rows: Row[]): { precision: number; recall: number } {
  const tp = rows.filter((r) => r.m.urgent && r.urgent).length;
  const fn = rows.filter((r) => r.m.urgent && !r.urgent).length;
  const fp = rows.filter((r) => !r.m.urgent && r.urgent).length;
  const tn = rows.filter((r) => !r.m.urgent && !r.urgent).length;
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const audioMin = rows.reduce((s, r) => s + r.durationMs, 0) / 60_000;
  const triageS = rows.reduce((s, r) => s + r.triageMs, 0) / 1000;
  out(`\n== ${title}: ${rows.length} messages (${rows.filter((r) => r.m.urgent).length} urgent)`);
  out('                 said urgent   said routine');
  out(`  is urgent      ${String(tp).padStart(11)}   ${String(fn).padStart(12)}`);
  out(`  is routine     ${String(fp).padStart(11)}   ${String(tn).padStart(12)}`);
  out(
    `  precision ${precision.toFixed(2)} (goal >= 0.70)   recall ${recall.toFixed(2)} (goal >= 0.90)   ` +
      `${precision >= 0.7 && recall >= 0.9 ? 'goals met' : 'GOALS NOT MET'}`,
  );
  out(
    `  triage time: ${(triageS / audioMin).toFixed(1)} s per minute of audio ` +
      `(${triageS.toFixed(1)} s for ${audioMin.toFixed(1)} min, one at a time)`,
  );
  for (const [what, phone] of [
    ['wideband (16 kHz)', false],
    ['phone band (8 kHz)', true],
  ] as const) {
    const part = rows.filter((x) => x.m.voice.phone === phone);
    const found = part.filter((x) => x.m.urgent && x.urgent).length;
    const urgent = part.filter((x) => x.m.urgent).length;
    const alarms = part.filter((x) => !x.m.urgent && x.urgent).length;
    out(`  ${what}: urgent found ${found}/${urgent}, false alarms ${alarms}/${part.length - urgent} routine`);
  }
  for (const r of rows.filter((x) => x.m.urgent !== x.urgent)) {
    out(
      `  ${r.m.urgent ? 'missed' : 'false alarm'}: ${r.m.id} [${r.m.voice.v} ${r.m.voice.s} wpm${r.m.voice.phone ? ', phone' : ''}${r.m.voice.noise ? `, noise ${r.m.voice.noise}` : ''}] "${r.m.text}" -> ${r.why}`,
    );
  }
  return { precision, recall };
}

async function main(): Promise<void> {
  const cpu = cpus();
  out('bench:triage — keyword spotting (pocketsphinx) + voice-stress cues on synthetic voicemail');
  out(
    `machine: ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const t0 = Date.now();
  const set = await makeSpeechSet({ voicesPerSentence: flag('--large') ? 2 : 1 });
  out(
    `labelled set: ${set.messages.length} messages in ${set.dir} (${set.made ? `${set.made} made in ${((Date.now() - t0) / 1000).toFixed(0)} s` : 'cached'})`,
  );
  const tune = set.messages.filter((m) => m.half === 'tune');
  const evalHalf = set.messages.filter((m) => m.half === 'eval');
  let phrases: UrgentPhrase[] = DEFAULT_PHRASES.map((p) => ({ ...p }));
  if (!flag('--defaults')) {
    const tuned = await tuneThresholds(
      tune,
      DEFAULT_PHRASES.map((p) => p.phrase),
      DEFAULT_SPOTTER,
      out,
    );
    out('\nthresholds chosen on the tuning half (phrase: threshold, found/of, false alarms on routine):');
    for (const t of tuned) {
      const shipped = DEFAULT_PHRASES.find((p) => p.phrase === t.phrase)?.threshold;
      out(
        `  ${t.phrase.padEnd(18)} ${t.threshold.toExponential()}  ${t.found}/${t.of}  ${t.falseAlarms}` +
          (shipped !== t.threshold ? `   (shipped default: ${shipped?.toExponential()})` : ''),
      );
    }
    phrases = tuned.map((t) => ({ phrase: t.phrase, threshold: t.threshold }));
  }
  out(
    `\nurgent when a phrase is spotted or the stress score reaches ${stressAt}; thresholds: ${flag('--defaults') ? 'shipped defaults' : 'tuned just now on the tuning half'}`,
  );
  const evalRows = await evaluate(evalHalf, phrases);
  const r = report('evaluation half (other sentences, other voices: the figures to quote)', evalRows);
  if (flag('--both-halves')) report('tuning half (optimistic: tuned on these)', await evaluate(tune, phrases));
  out(`\ndone in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  process.exitCode = r.precision >= 0.7 && r.recall >= 0.9 ? 0 : 1;
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 2;
});
