/**
 * `npm start`: the fleet on one machine (embedded aedes, SQLite), or as the
 * configuration says. Config file: --config <file>, or CALLBOX_FLEET_CONFIG,
 * or /etc/callbox/fleet.yaml when it exists; CALLBOX_FLEET__* overrides.
 */
import { existsSync } from 'node:fs';
import { describeError, isCallboxError } from '../shared/errors.js';
import { getLogger } from '../shared/log.js';
import { alertsFeature } from './alerts/feature.js';
import { loadFleetConfig } from './config.js';
import { Fleet } from './fleet.js';
import { voicemailFeature } from './voicemail/feature.js';

const log = getLogger('fleet:main');

function configFile(argv: string[]): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) return argv[i + 1];
  if (process.env.CALLBOX_FLEET_CONFIG) return process.env.CALLBOX_FLEET_CONFIG;
  return existsSync('/etc/callbox/fleet.yaml') ? '/etc/callbox/fleet.yaml' : undefined;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  let fleet: Fleet;
  try {
    const config = loadFleetConfig(configFile(argv));
    fleet = await Fleet.start(config, { features: [alertsFeature(), voicemailFeature()] });
    const where = fleet.broker?.ports
      ? `embedded broker on ${config.mqtt.host}:${fleet.broker.ports.tcp ?? '(no plaintext listener)'}` +
        (fleet.broker.ports.tls ? `, TLS ${fleet.broker.ports.tls}` : '') +
        (fleet.broker.ports.ws ? `, WebSocket ${fleet.broker.ports.ws}` : '')
      : `external broker ${fleet.brokerUrl}`;
    log.info({ store: config.store.kind }, `fleet running: ${where}`);
  } catch (e) {
    const code = isCallboxError(e) ? e.code : 'error';
    process.stderr.write(`fleet: cannot start (${code}): ${describeError(e)}\n`);
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    log.info({ signal }, 'stopping');
    fleet.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

await main();
