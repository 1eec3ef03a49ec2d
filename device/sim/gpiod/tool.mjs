// Stand-in for libgpiod's `gpioset`, `gpioget` and `gpiomon` (argv[2] names which), in the generation that
// CALLBOX_SIM_GPIOD_VERSION names (v1 or v2), over the simulated chip of device/sim/gpiod/chip.ts
// (CALLBOX_SIM_GPIOCHIP_SOCKET, CALLBOX_SIM_GPIOCHIP_NAME). Plain JavaScript, so each call starts as fast as a
// small binary would matter: the box runs one per line and restarts dead ones.
//
// Command lines accepted, as the real tools take them (anything else: "unrecognized option", exit 1):
//   v2: gpioset --chip C --interactive L=V     (stdin: "set L=V")
//       gpioget --chip C --numeric --bias B L
//       gpiomon --chip C --bias B --edges both --format "%o %e" L     (%e: 1 rising, 2 falling)
//   v1: gpioset --mode=signal C L=V             (holds until SIGINT/SIGTERM)
//       gpioget --bias=B C L
//       gpiomon --bias=B --format=%o %e C L     (%e: 1 rising, 0 falling)
//   both: --version
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const tool = process.argv[2];
const args = process.argv.slice(3);
const version = process.env.CALLBOX_SIM_GPIOD_VERSION === 'v1' ? 'v1' : 'v2';
const chipName = process.env.CALLBOX_SIM_GPIOCHIP_NAME ?? 'gpiochip0';
const socketPath = process.env.CALLBOX_SIM_GPIOCHIP_SOCKET;

function fail(message) {
  process.stderr.write(`${tool}: ${message}\n`);
  process.exit(1);
}

if (args[0] === '--version') {
  process.stdout.write(
    `${tool} (libgpiod) ${version === 'v1' ? 'v1.6.3' : 'v2.1.3'}\nCopyright (C) 2017-2023 Bartosz Golaszewski\n`,
  );
  process.exit(0);
}

/** Options (--name value, --name=value, flags) and operands, strictly against what this tool knows. */
function parse(known, flags) {
  const opts = {};
  const operands = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      operands.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (flags.includes(name)) opts[name] = true;
    else if (known.includes(name)) opts[name] = inline ?? args[++i];
    else fail(`unrecognized option '--${name}'`);
  }
  return { opts, operands };
}

const BIAS =
  version === 'v1' ? ['as-is', 'disable', 'pull-down', 'pull-up'] : ['as-is', 'disabled', 'pull-down', 'pull-up'];
let line;
let request;
if (version === 'v2') {
  const spec = {
    gpioset: [['chip'], ['interactive']],
    gpioget: [['chip', 'bias'], ['numeric']],
    gpiomon: [['chip', 'bias', 'edges', 'format'], []],
  }[tool];
  if (!spec) fail('unknown tool');
  const { opts, operands } = parse(...spec);
  if (opts.chip !== chipName) fail(`cannot find GPIO chip '${opts.chip}'`);
  if (opts.bias !== undefined && !BIAS.includes(opts.bias)) fail(`invalid bias: ${opts.bias}`);
  if (tool === 'gpioset') {
    const m = /^(\d+)=([01])$/.exec(operands[0] ?? '');
    if (!opts.interactive || !m) fail('usage: gpioset --chip C --interactive LINE=VALUE');
    line = Number(m[1]);
    request = { dir: 'out', value: Number(m[2]) };
  } else {
    line = Number(operands[0]);
    if (!Number.isInteger(line)) fail('at least one GPIO line must be specified');
    if (tool === 'gpiomon' && (opts.edges !== 'both' || opts.format !== '%o %e')) fail('unsupported --edges/--format');
    request = { dir: 'in', bias: opts.bias ?? 'as-is', watch: tool === 'gpiomon' };
  }
} else {
  const spec = {
    gpioset: [['mode'], []],
    gpioget: [['bias'], []],
    gpiomon: [['bias', 'format'], []],
  }[tool];
  if (!spec) fail('unknown tool');
  const { opts, operands } = parse(...spec);
  if (operands[0] !== chipName) fail(`error opening GPIO chip: No such file or directory`);
  if (opts.bias !== undefined && !BIAS.includes(opts.bias)) fail(`invalid bias: ${opts.bias}`);
  if (tool === 'gpioset') {
    const m = /^(\d+)=([01])$/.exec(operands[1] ?? '');
    if (opts.mode !== 'signal' || !m) fail('usage: gpioset --mode=signal CHIP LINE=VALUE');
    line = Number(m[1]);
    request = { dir: 'out', value: Number(m[2]) };
  } else {
    line = Number(operands[1]);
    if (!Number.isInteger(line)) fail('at least one GPIO line offset must be specified');
    if (tool === 'gpiomon' && opts.format !== '%o %e') fail('unsupported --format');
    request = {
      dir: 'in',
      bias: opts.bias === 'disable' ? 'disabled' : (opts.bias ?? 'as-is'),
      watch: tool === 'gpiomon',
    };
  }
}

if (!socketPath) fail('CALLBOX_SIM_GPIOCHIP_SOCKET is not set (this is the simulator of device/sim/gpiod)');
const sock = connect(socketPath);
sock.on('error', (e) => fail(`error opening GPIO chip: ${e.message}`));
sock.write(`${JSON.stringify({ op: 'request', pid: process.pid, tool, line, ...request })}\n`);
let granted = false;
const quit = () => {
  sock.end();
  process.exit(0);
};
createInterface({ input: sock }).on('line', (text) => {
  const msg = JSON.parse(text);
  if (!granted) {
    if (!msg.ok) fail(`unable to request lines: ${msg.error}`);
    granted = true;
    if (tool === 'gpioget') {
      process.stdout.write(`${msg.value}\n`);
      quit();
    }
    if (tool === 'gpioset') {
      process.on('SIGTERM', quit);
      process.on('SIGINT', quit);
      if (version === 'v2') {
        createInterface({ input: process.stdin })
          .on('line', (cmd) => {
            const m = /^set\s+(\d+)=([01])$/.exec(cmd.trim());
            if (m && Number(m[1]) === line) sock.write(`${JSON.stringify({ op: 'set', line, value: Number(m[2]) })}\n`);
            else process.stderr.write(`gpioset: invalid command: ${cmd}\n`);
          })
          .on('close', quit);
      }
    }
    if (tool === 'gpiomon') {
      process.on('SIGTERM', quit);
      process.on('SIGINT', quit);
    }
    return;
  }
  if (msg.edge && tool === 'gpiomon') {
    const rising = msg.edge.value === 1;
    const code = rising ? 1 : version === 'v1' ? 0 : 2;
    process.stdout.write(`${msg.edge.line} ${code}\n`);
  }
});
sock.on('close', () => process.exit(granted ? 0 : 1));
