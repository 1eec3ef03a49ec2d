/**
 * callbox-device: the box program. `callbox-device --config /etc/callbox/device.yaml`
 * (or `tsx device/main.ts --config ...`). Runs until SIGTERM/SIGINT, then
 * shuts down cleanly (modules, outbox commits, retained offline status,
 * store) and exits 0; a second signal exits at once. An unhandled rejection
 * or uncaught exception is logged and exits 70 (shared/crash.ts): systemd
 * restarts the box from its durable state.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { exitOnUnhandled } from '../shared/crash.js';
import { describeError, EXIT_CONFIG, isConfigError } from '../shared/errors.js';
import { getLogger, setupLogging } from '../shared/log.js';
import { Box } from './box.js';
import { loadDeviceConfig } from './config.js';
import { defaultModules, ModemFeature } from './features/index.js';
import { shutdownHandler } from './shutdown.js';
import { UpdateFeature } from './update/feature.js';

export async function main(argv = process.argv): Promise<void> {
  const program = new Command()
    .name('callbox-device')
    .description('the Callbox call box: modem, indicators, voicemail and the link to the fleet')
    .option('-c, --config <file>', 'configuration file (YAML or JSON)', process.env.CALLBOX_DEVICE_CONFIG)
    .parse(argv);
  const opts = program.opts<{ config?: string }>();
  let config: ReturnType<typeof loadDeviceConfig>;
  try {
    config = loadDeviceConfig(opts.config);
  } catch (e) {
    process.stderr.write(`callbox-device: ${describeError(e)}\n`);
    process.exit(isConfigError(e) ? EXIT_CONFIG : 1);
  }
  setupLogging({ level: process.env.CALLBOX_LOG_LEVEL ?? config.log.level });
  const log = getLogger('device:main');
  exitOnUnhandled(log, { program: 'callbox-device' });
  const box = new Box({
    config,
    onReboot: () => void shutdown('reboot'),
  });
  // Forced out after FORCED_EXIT_MS, well before systemd's SIGKILL (device/shutdown.ts says why).
  const shutdown = shutdownHandler({ stop: () => box.stop(), exit: (code) => process.exit(code), log });
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  const modules = defaultModules(config);
  for (const m of modules) box.use(m);
  const modem = modules.find((m): m is ModemFeature => m instanceof ModemFeature);
  // Over-the-air updates: a new release confirms its health or is rolled back (device/update/feature.ts).
  box.use(
    new UpdateFeature({
      ...(modem ? { modemReady: () => modem.modem.state === 'ready' } : {}),
      restart: (why, code) => void shutdown(why, code),
    }),
  );
  box.on('state', (state, detail) => log.info({ state, detail }, 'uplink state'));
  try {
    await box.start();
  } catch (e) {
    log.fatal({ err: e }, `box failed to start: ${describeError(e)}`);
    process.exit(1);
  }
}

const entry = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url)) void main();
