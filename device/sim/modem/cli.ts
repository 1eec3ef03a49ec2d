/**
 * Run the modem emulator on its own, for the demo or by hand:
 *
 *   npx tsx device/sim/modem/cli.ts --vendor sim7600 --ring-ms 3000
 *
 * It prints the pty path to give the box (CALLBOX_DEVICE__MODEM__PATH=...)
 * and reads commands on stdin:
 *   ring [number]   incoming call (no number: withheld)
 *   hangup          the caller hangs up
 *   sms <from> <text...>
 *   loss | restore  network lost / back
 *   unplug | replug | reboot | garbage
 *   status          calls, forwarding, SMS sent
 *   quit
 */
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { type EmulatedVendor, ModemEmulator } from './emulator.js';

const VENDORS = ['generic', 'sim7600', 'sim800', 'ec25', 'huawei'];

const program = new Command()
  .option('--vendor <name>', `emulated modem: ${VENDORS.join(', ')}`, 'generic')
  .option('--ring-ms <ms>', 'time between RINGs', '3000')
  .parse();
const opts = program.opts<{ vendor: string; ringMs: string }>();
if (!VENDORS.includes(opts.vendor)) {
  console.error(`--vendor "${opts.vendor}" is not one of ${VENDORS.join(', ')}`);
  process.exit(2);
}
const ringMs = Number(opts.ringMs);
if (!Number.isInteger(ringMs) || ringMs < 50 || ringMs > 60_000) {
  console.error(`--ring-ms "${opts.ringMs}" is not an integer from 50 to 60000`);
  process.exit(2);
}

const emu = new ModemEmulator({ vendor: opts.vendor as EmulatedVendor, ringIntervalMs: ringMs });
const { path } = await emu.start();
console.log(`modem emulator (${opts.vendor}) on ${path}`);

const rl = createInterface({ input: process.stdin });
rl.on('line', (input) => {
  void (async () => {
    const [cmd, ...args] = input.trim().split(/\s+/);
    try {
      switch (cmd) {
        case 'ring':
          console.log(`call ${emu.incomingCall(args[0] ?? null)}`);
          break;
        case 'hangup':
          emu.callerHangsUp();
          break;
        case 'sms':
          if (!args[0] || args.length < 2) console.log('usage: sms <from> <text>');
          else {
            const index = emu.receiveSms(args[0], args.slice(1).join(' '));
            console.log(index === null ? 'SIM full: held by the network until a place frees' : `stored at ${index}`);
          }
          break;
        case 'loss':
          emu.networkLoss();
          break;
        case 'restore':
          emu.networkRestore();
          break;
        case 'unplug':
          await emu.unplug();
          break;
        case 'replug':
          await emu.replug();
          break;
        case 'reboot':
          await emu.reboot();
          break;
        case 'garbage':
          emu.injectGarbage();
          break;
        case 'status':
          console.log(
            JSON.stringify({ calls: emu.calls, forwarding: [...emu.forwarding], smsSent: emu.smsSent }, null, 2),
          );
          break;
        case 'quit':
          await emu.stop();
          process.exit(0);
          break;
        case '':
        case undefined:
          break;
        default:
          console.log(`unknown command "${cmd}"`);
      }
    } catch (e) {
      console.log(`failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  })();
});
const shutdown = () => {
  void emu.stop().then(() => process.exit(0));
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
