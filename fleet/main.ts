/**
 * `npm start`: the fleet on one machine (embedded aedes, SQLite), or as the
 * configuration says. Config file: --config <file>, or CALLBOX_FLEET_CONFIG,
 * or /etc/callbox/fleet.yaml when it exists; CALLBOX_FLEET__* overrides.
 * An unhandled rejection or uncaught exception is logged and exits 70
 * (shared/crash.ts): systemd restarts the fleet from its store.
 */
import { existsSync } from 'node:fs';
import { exitOnUnhandled } from '../shared/crash.js';
import { describeError, EXIT_CONFIG, isCallboxError, isConfigError } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import { SystemdNotifier } from '../shared/systemd-notify.js';
import { alertsFeature } from './alerts/feature.js';
import { loadFleetConfig } from './config.js';
import { localBrokerUrl, writeConnectionFile } from './connection-file.js';
import { Fleet } from './fleet.js';
import { updatesFeature } from './updates/feature.js';
import { voicemailFeature } from './voicemail/feature.js';

const log = getLogger('fleet:main');

function configFile(argv: string[]): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) return argv[i + 1];
  if (process.env.CALLBOX_FLEET_CONFIG) return process.env.CALLBOX_FLEET_CONFIG;
  return existsSync('/etc/callbox/fleet.yaml') ? '/etc/callbox/fleet.yaml' : undefined;
}

/** The watchdog's health check: the store answers within 5 s (a wedged database or event loop stops the pings). */
async function storeAnswers(fleet: Fleet): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), 5000);
  });
  try {
    return await Promise.race([fleet.store.schemaVersion().then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  exitOnUnhandled(log, { program: 'fleet' });
  let fleet: Fleet;
  // READY=1 once serving, WATCHDOG=1 while the store answers, STOPPING=1 on a signal (nothing without systemd).
  const notifier = new SystemdNotifier({ log: getLogger('fleet:systemd') });
  try {
    const config = loadFleetConfig(configFile(argv));
    fleet = await Fleet.start(config, { features: [alertsFeature(), voicemailFeature(), updatesFeature()] });
    const where = fleet.broker?.ports
      ? `embedded broker on ${config.mqtt.host}:${fleet.broker.ports.tcp ?? '(no plaintext listener)'}` +
        (fleet.broker.ports.tls ? `, TLS ${fleet.broker.ports.tls}` : '') +
        (fleet.broker.ports.ws ? `, WebSocket ${fleet.broker.ports.ws}` : '')
      : config.mqtt.mode === 'cluster'
        ? `cluster engine ${config.mqtt.clusterMqttUrls.join(', ')}`
        : `external broker ${fleet.brokerUrl}`;
    const url = localBrokerUrl(config, fleet.broker?.ports, fleet.brokerUrl);
    const file = writeConnectionFile(config, url);
    log.info(
      { store: config.store.kind, connection: file },
      `fleet running: ${where}; the fleet CLI reaches it at ${url}`,
    );
    await notifier.ready(where);
    notifier.startWatchdog(() => storeAnswers(fleet));
  } catch (e) {
    const code = isCallboxError(e) ? e.code : 'error';
    process.stderr.write(`fleet: cannot start (${code}): ${describeError(e)}\n`);
    process.exit(isConfigError(e) ? EXIT_CONFIG : 1);
  }
  const shutdown = (signal: string) => {
    log.info({ signal }, 'stopping');
    notifier
      .stopping()
      .then(() => fleet.stop())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

await main();
