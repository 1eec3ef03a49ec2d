/**
 * `npm run demo` [-- --keep-running]: the whole system on this machine.
 * The fleet with its embedded broker on a free port (the machine's
 * Mosquitto keeps 1883), one simulated box (modem emulator on a socat pty,
 * virtual panel, the real box software) and a narrated scenario: a call
 * answered at the desk, one rolled over to the answering service, a panic
 * press acknowledged through the alert engine, rollover on and off, and the
 * events the fleet stored with their figures, then the call log with each
 * caller's patient record from a FHIR stand-in, the call-back list and the
 * after-call survey's reply counted (scripts/demo/demo-script.ts).
 *
 * Data and the log file go to a new temp folder (printed). Exits 0 on its
 * own when the scenario worked, 1 with the reason when it did not, 2 when
 * something needed is missing; every process and pty it started is gone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { setupLogging } from '../../shared/log.js';

const HELP = `usage: npm run demo [-- --keep-running]

  --keep-running   leave the fleet and the box running after the scenario (Ctrl-C stops)
  --help           this text
`;

/** Seconds of 16-bit mono PCM that rise and fall like speech (a tone under a slow envelope). */
function callerVoice(rate: number, seconds: number): Buffer {
  const b = Buffer.alloc(rate * seconds * 2);
  for (let i = 0; i < rate * seconds; i++) {
    const envelope = 0.5 + 0.5 * Math.sin((2 * Math.PI * i) / (rate * 0.7));
    b.writeInt16LE(Math.round(7000 * envelope * Math.sin((2 * Math.PI * 220 * i) / rate)), i * 2);
  }
  return b;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const unknown = argv.filter((a) => a !== '--keep-running' && a !== '--help' && a !== '-h');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return;
  }
  if (unknown.length > 0) fail(`unknown option ${unknown.join(' ')}\n${HELP}`);
  const keepRunning = argv.includes('--keep-running');

  const socat = spawnSync('socat', ['-V'], { stdio: 'ignore' });
  if (socat.error) {
    fail('socat is not installed (the modem emulator needs it for its pty): run scripts/install-deps.sh');
  }

  const dir = mkdtempSync(join(tmpdir(), 'callbox-demo-'));
  const logFile = join(dir, 'demo.log');
  // Before any other module is loaded: their loggers must write to the file, not the console.
  setupLogging({
    level: process.env.CALLBOX_LOG_LEVEL ?? 'info',
    format: 'json',
    destination: pino.destination({ dest: logFile, sync: true }),
  });

  // The caller's voice for voicemail: an ALSA file PCM (asoundrc) the real alsa-capture records from.
  const callerAudio = existsSync('/usr/share/alsa/alsa.conf');
  if (callerAudio) {
    const raw = join(dir, 'caller.raw');
    writeFileSync(raw, callerVoice(8000, 12));
    writeFileSync(
      join(dir, 'asound.conf'),
      `</usr/share/alsa/alsa.conf>\npcm.caller {\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "${raw}"\n format "raw"\n}\n`,
    );
    process.env.ALSA_CONFIG_PATH = join(dir, 'asound.conf');
  }

  // The dashboard the fleet serves: built when missing or older than its sources (scripts/build-web.mjs).
  if (keepRunning) {
    try {
      const { buildWeb } = await import('../build-web.mjs');
      await buildWeb({ ifStale: true, quiet: true });
    } catch (e) {
      process.stderr.write(`demo: the dashboard could not be built (${(e as Error).message}); run npm run build:web\n`);
    }
  }

  let runDemo: typeof import('./demo-script.js').runDemo;
  let stopDemo: typeof import('./demo-script.js').stopDemo;
  try {
    ({ runDemo, stopDemo } = await import('./demo-script.js'));
  } catch (e) {
    fail(
      `the demo cannot load the project's modules: ${(e as Error).message.split('\n')[0]}\n` +
        'Install the system packages and the dependencies: run scripts/install-deps.sh, then npm ci',
    );
  }

  // Give up cleanly: stop the box (its socat pty pair) and the fleet (its broker process), then exit.
  const giveUp = (why: string, code: number) => {
    process.stderr.write(`demo: ${why}; stopping everything (log: ${logFile})\n`);
    const force = setTimeout(() => process.exit(code), 10_000);
    force.unref();
    void stopDemo().finally(() => process.exit(code));
  };
  const watchdogS = 120;
  const watchdog = keepRunning
    ? undefined
    : setTimeout(() => giveUp(`still not finished after ${watchdogS} s`, 1), watchdogS * 1000);
  watchdog?.unref();
  if (!keepRunning) {
    process.once('SIGINT', () => giveUp('interrupted', 130));
    process.once('SIGTERM', () => giveUp('terminated', 143));
  }
  const code = await runDemo({ dir, logFile, keepRunning, callerAudio });
  clearTimeout(watchdog);
  process.exit(code);
}

await main(process.argv.slice(2));
