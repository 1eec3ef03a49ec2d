/**
 * The box's local configuration: /etc/callbox/device.yaml (or --config),
 * overridden by CALLBOX_DEVICE__* environment variables. What ops change
 * remotely (hours, rollover, panic contacts) is not here but in the settings
 * the fleet publishes: shared/contract/settings.ts.
 */
import { loadConfig } from '../shared/config.js';
import { Section, type Static, Strict, Type } from '../shared/schema.js';
import { IoConfigSchema } from './io/config.js';
import { ModemConfigSchema } from './modem/config.js';
import { UpdateConfigSchema } from './update/config.js';
import { MqttConfigSchema, OutboxConfigSchema } from './uplink/config.js';

export const DeviceConfigSchema = Strict({
  box: Section(
    {
      serial: Type.String({
        pattern: '^[A-Z0-9][A-Z0-9-]{3,31}$',
        default: 'CB-UNSET',
        description: 'factory serial number, as on the label',
      }),
      claimSecret: Type.String({
        default: '',
        description: 'factory claim secret, as on the label (empty: not claimable)',
      }),
      model: Type.String({ default: 'callbox-1', description: 'hardware model' }),
      dataDir: Type.String({
        minLength: 1,
        default: '/var/lib/callbox',
        description: 'store, credentials and voicemail',
      }),
    },
    'this box',
  ),
  mqtt: MqttConfigSchema,
  outbox: OutboxConfigSchema,
  modem: ModemConfigSchema,
  io: IoConfigSchema,
  audio: Section(
    {
      captureDevice: Type.String({ default: 'default', description: 'ALSA capture device for voicemail' }),
      sampleRate: Type.Integer({ minimum: 8000, maximum: 48000, default: 8000, description: 'sample rate in Hz' }),
    },
    'voicemail audio',
  ),
  update: UpdateConfigSchema,
  log: Section(
    {
      level: Type.String({
        default: 'info',
        description: 'level, with per-namespace overrides: "info,device:modem:at=debug"',
      }),
    },
    'logging',
  ),
});

export type DeviceConfig = Static<typeof DeviceConfigSchema>;
export const DEVICE_ENV_PREFIX = 'CALLBOX_DEVICE';

export function loadDeviceConfig(file?: string, values?: Record<string, unknown>, env = process.env): DeviceConfig {
  return loadConfig({
    schema: DeviceConfigSchema,
    what: 'device configuration',
    file,
    ...(values ? { values } : {}),
    envPrefix: DEVICE_ENV_PREFIX,
    env,
  });
}
