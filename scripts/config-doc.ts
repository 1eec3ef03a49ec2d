/**
 * Renders docs/CONFIGURATION.md from the configuration schemas (box local
 * configuration, fleet configuration, box remote settings). `npm run
 * docs:config` rewrites it; a test fails when the file and the code disagree.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEVICE_ENV_PREFIX, DeviceConfigSchema } from '../device/config.js';
import { FLEET_ENV_PREFIX, FleetConfigSchema } from '../fleet/config.js';
import { describeConfig } from '../shared/config.js';
import { DeviceSettingsSchema } from '../shared/contract/settings.js';

export const CONFIG_DOC_PATH = fileURLToPath(new URL('../docs/CONFIGURATION.md', import.meta.url));

export function renderConfigDoc(): string {
  return `${[
    '# Configuration',
    '',
    '<!-- Generated from the schemas by `npm run docs:config`; a test fails when this file and the code disagree. Do not edit by hand. -->',
    '',
    'Both programs read one YAML (or JSON) file, then environment variables, over built-in defaults. A bad value stops start-up with a message naming the file or variable, the field, the value and what is allowed; nothing half-starts. Unknown fields are errors, so a typo cannot be silently ignored. Every duration says its unit in its name (`Ms`, `S`, `Min`, `H`) and its range and default below.',
    '',
    'A wrong configuration stops either program with exit code 78 (`EX_CONFIG`); the systemd units do not restart on it (`RestartPreventExitStatus=78`), since a restart cannot fix a file. Other fatal errors exit 1 and are restarted.',
    '',
    '## The box: `/etc/callbox/device.yaml` (`callbox-device --config FILE`)',
    '',
    describeConfig(DeviceConfigSchema, DEVICE_ENV_PREFIX),
    '',
    '## The fleet: `/etc/callbox/fleet.yaml` (`npm start -- --config FILE`; built: `node dist/fleet/main.js --config FILE`)',
    '',
    describeConfig(FleetConfigSchema, FLEET_ENV_PREFIX),
    '',
    '## Box settings managed by the fleet',
    '',
    'Published by the fleet as the retained, versioned `ConfigDesired` message (see PROTOCOL.md) and validated whole by the box before it applies them; set with `fleet config set <box> FILE`.',
    '',
    describeConfig(DeviceSettingsSchema, '(none: set through the fleet)').split('\n').slice(2).join('\n'),
  ].join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(CONFIG_DOC_PATH, renderConfigDoc());
  process.stdout.write(`wrote ${CONFIG_DOC_PATH}\n`);
}
