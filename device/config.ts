/**
 * The box's local configuration: /etc/callbox/device.yaml (or --config),
 * overridden by CALLBOX_DEVICE__* environment variables. What ops change
 * remotely (hours, rollover, panic contacts) is not here but in the settings
 * the fleet publishes: shared/contract/settings.ts.
 */
import { CLAIM_SECRET_RULE, ClaimSecret } from '../shared/claim-secret.js';
import { loadConfig } from '../shared/config.js';
import { CallboxError, ErrorCode } from '../shared/errors.js';
import { Seconds, Section, type Static, Strict, Type } from '../shared/schema.js';
import { IoConfigSchema } from './io/config.js';
import { ModemConfigSchema } from './modem/config.js';
import { UpdateConfigSchema } from './update/config.js';
import { MqttConfigSchema, OutboxConfigSchema } from './uplink/config.js';
import { isLoopbackHost } from './uplink/link.js';
import { GREETING_MAX_MS } from './voicemail/greeting.js';

export const DeviceConfigSchema = Strict({
  box: Section(
    {
      serial: Type.String({
        pattern: '^[A-Z0-9][A-Z0-9-]{3,31}$',
        default: 'CB-UNSET',
        description: 'factory serial number, as on the label',
      }),
      claimSecret: Type.Union([Type.Literal(''), ClaimSecret('as on the label')], {
        default: '',
        description: `factory claim secret, as on the label: ${CLAIM_SECRET_RULE}, the rule \`fleet boxes register --secret\` applies (empty: not claimable)`,
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
      playbackDevice: Type.String({
        minLength: 1,
        default: 'default',
        description: "ALSA playback device into the modem's audio path, for WAV greetings (played with aplay)",
      }),
      aplay: Type.String({
        minLength: 1,
        default: 'aplay',
        description: 'the aplay program (alsa-utils) that plays WAV greetings: a name on the PATH or a path',
      }),
      greetingMaxS: Seconds('a greeting (tts or wav) that plays longer than this is stopped and recording starts', {
        default: 30,
        minimum: 5,
        maximum: GREETING_MAX_MS / 1000,
      }),
    },
    'voicemail audio: recording, and greetings played before it',
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
  const config = loadConfig({
    schema: DeviceConfigSchema,
    what: 'device configuration',
    file,
    ...(values ? { values } : {}),
    envPrefix: DEVICE_ENV_PREFIX,
    env,
  });
  // The link's TLS rule, checked with the rest of the configuration rather than when the link starts.
  if (!/^(mqtts|tls|wss):/.test(config.mqtt.url) && !isLoopbackHost(new URL(config.mqtt.url).hostname)) {
    throw new CallboxError(
      ErrorCode.ConfigInvalid,
      `device configuration is invalid (nothing was started):\n  ${file ?? 'defaults'}: field /mqtt/url: got ${config.mqtt.url}, ` +
        'expected mqtts:// (TLS) for a broker that is not on loopback: caller numbers must not cross a network in clear',
    );
  }
  return config;
}
