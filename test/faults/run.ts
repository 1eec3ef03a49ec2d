/**
 * `npm run faults [-- --seed N --boxes 30 --kills 20 --events 5 --outage 30 --scenarios sigkill,stall,...]`
 *
 * The whole fault suite (test/faults/harness.ts) with the full figures:
 * the fleet process group SIGKILLed at least 20 times while 30 boxes send,
 * a store stall then SIGKILL, the broker child killed, external Mosquitto
 * killed and restarted, the fleet down 30 s in external mode. Exits 1 when
 * an event was lost or stored twice. Replay a run with its printed seed
 * (--seed or CALLBOX_FAULT_SEED).
 */
// Quiet logs (set before the fleet modules and their loggers load); the fleet's own go to its log file.
process.env.CALLBOX_LOG_LEVEL ??= 'error';
const { ALL_SCENARIOS, runFaultSuite } = await import('./harness.js');
type Scenario = import('./harness.js').Scenario;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}

const seed = Number(arg('seed', process.env.CALLBOX_FAULT_SEED ?? String(Math.floor(Math.random() * 2 ** 31))));
const scenarios = arg('scenarios', ALL_SCENARIOS.join(',')).split(',') as Scenario[];
for (const s of scenarios) {
  if (!ALL_SCENARIOS.includes(s)) {
    process.stderr.write(`--scenarios: got ${JSON.stringify(s)}, expected some of ${ALL_SCENARIOS.join(',')}\n`);
    process.exit(2);
  }
}
const figures = await runFaultSuite({
  seed,
  boxes: Number(arg('boxes', '30')),
  kills: Number(arg('kills', '20')),
  eventsPerS: Number(arg('events', '5')),
  panicEvery: 25,
  scenarios,
  outageS: Number(arg('outage', '30')),
  receiptTimeoutMs: 3000,
  drainTimeoutMs: 180_000,
  log: (line) => process.stdout.write(`${line}\n`),
});
const sum = (k: 'receipted' | 'lost' | 'storedTwice' | 'panicsWithoutAlert' | 'unreceipted' | 'faults') =>
  figures.reduce((n, f) => n + f[k], 0);
process.stdout.write(
  `total: ${sum('faults')} faults, ${sum('receipted')} events receipted to boxes, lost ${sum('lost')}, stored twice ${sum('storedTwice')}, unreceipted at the end ${sum('unreceipted')}, panic presses without an alert ${sum('panicsWithoutAlert')} (seed ${seed})\n`,
);
process.exit(sum('lost') === 0 && sum('storedTwice') === 0 && sum('unreceipted') === 0 ? 0 : 1);
