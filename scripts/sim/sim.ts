/**
 * `npm run sim`: the hardware of one call box, emulated on this machine, for running the real box program
 * against it (docs/GETTING-STARTED.md):
 *
 *   - the GSM modem emulator on a pseudo-terminal (AT commands, as device/sim/modem/cli.ts);
 *   - a Firmata board emulator on another pseudo-terminal (LEDs, buzzer, the panic button), which the box
 *     opens through johnny-five as it would open a real USB microcontroller;
 *   - a box configuration using both, with the broker URL of the
 *     local fleet (read from the connection.json it wrote in its data folder, ./var by default), written to
 *     <that folder>/sim/device.yaml (var/sim/device.yaml) and printed.
 *
 * Then it reads commands on stdin:
 *   ring [number]   an incoming call (default +15551230000)
 *   hangup          the caller hangs up
 *   panic           press and hold the panic button (1.5 s)
 *   status          calls, forwarding, SMS sent
 *   quit            (or end of input, or SIGINT/SIGTERM)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { loadPinmap } from '../../device/io/pinmap.js';
import { FirmataEmulator } from '../../device/sim/firmata/emulator.js';
import { ModemEmulator } from '../../device/sim/modem/emulator.js';
import { readConnectionFile } from '../../fleet/connection-file.js';

const program = new Command('callbox-sim')
  .description("a call box's hardware emulated on this machine, and the box configuration to use it")
  .option('--dir <dir>', "where the box configuration and the box data go (default: sim/ in the fleet's data folder)")
  .option('--serial <serial>', 'the box serial', 'CB-SIM-0001')
  .option('--url <url>', "the fleet broker (default: the connection.json in the fleet's data folder)")
  .option('--data-dir <dir>', "the fleet's data folder (default: CALLBOX_FLEET__DATA__DIR, else ./var)")
  .option('--ring-ms <ms>', 'time between RINGs', '1000')
  .parse();
const o = program.opts<{ dir?: string; serial: string; url?: string; dataDir?: string; ringMs: string }>();

function fail(message: string): never {
  process.stderr.write(`callbox-sim: ${message}\n`);
  process.exit(2);
}

const fleetDir = o.dataDir ?? process.env.CALLBOX_FLEET__DATA__DIR ?? 'var';
let url = o.url;
if (!url) {
  try {
    url = readConnectionFile(fleetDir)?.url;
  } catch (e) {
    fail((e as Error).message);
  }
}
if (!url)
  fail(
    `no fleet found: ${join(fleetDir, 'connection.json')} does not exist; start the fleet first (npm start) or give --url`,
  );

const dir = resolve(o.dir ?? join(fleetDir, 'sim'));
mkdirSync(dir, { recursive: true });
const modem = new ModemEmulator({ vendor: 'sim7600', ringIntervalMs: Number(o.ringMs) });
const { path: modemPath } = await modem.start();
const board = await FirmataEmulator.start();
const panicPin = loadPinmap().signals['button.panic'].firmata;

const config = {
  box: {
    serial: o.serial,
    claimSecret: `sim-${randomBytes(8).toString('hex')}`,
    dataDir: join(dir, 'box'),
  },
  mqtt: { url, claimRetryS: 5, reconnectMinMs: 200, reconnectMaxMs: 5000 },
  modem: { path: modemPath },
  io: { board: 'firmata', firmataPath: board.path },
  log: { level: 'info' },
};
const file = join(dir, 'device.yaml');
writeFileSync(file, stringify(config), { mode: 0o600 });
process.stdout.write(
  [
    `modem emulator on ${modemPath}; Firmata board emulator on ${board.path}`,
    `box configuration: ${file}`,
    `run the box:       npx callbox-device --config ${file}`,
    'commands: ring [number] | hangup | panic | status | quit',
    '',
  ].join('\n'),
);

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await modem.stop().catch(() => undefined);
  await board.stop().catch(() => undefined);
  process.exit(code);
}
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

const rl = createInterface({ input: process.stdin });
rl.on('close', () => void stop(0));
rl.on('line', (line) => {
  const [cmd, ...args] = line.trim().split(/\s+/);
  switch (cmd) {
    case 'ring':
      process.stdout.write(`call ${modem.incomingCall(args[0] ?? '+15551230000')} ringing\n`);
      break;
    case 'hangup':
      modem.callerHangsUp();
      process.stdout.write('caller hung up\n');
      break;
    case 'panic':
      board.setInput(panicPin, 0); // closed to ground: pressed
      setTimeout(() => {
        board.setInput(panicPin, null);
        process.stdout.write('panic button pressed and held 1.5 s\n');
      }, 1500);
      break;
    case 'status':
      process.stdout.write(
        `${JSON.stringify({ calls: modem.calls, forwarding: [...modem.forwarding], smsSent: modem.smsSent })}\n`,
      );
      break;
    case 'quit':
      void stop(0);
      break;
    case '':
    case undefined:
      break;
    default:
      process.stdout.write(`unknown command "${cmd}": ring [number] | hangup | panic | status | quit\n`);
  }
});
