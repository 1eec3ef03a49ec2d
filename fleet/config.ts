/**
 * The fleet service's configuration: /etc/callbox/fleet.yaml (or --config),
 * overridden by CALLBOX_FLEET__* environment variables.
 */
import { loadConfig } from '../shared/config.js';
import { Millis, Seconds, Section, type Static, Strict, Type } from '../shared/schema.js';

export const FleetConfigSchema = Strict({
  mqtt: Section(
    {
      mode: Type.Union([Type.Literal('embedded'), Type.Literal('external')], {
        default: 'embedded',
        description: 'embedded: run aedes here; external: use the broker at externalUrl',
      }),
      host: Type.String({ default: '0.0.0.0', description: 'embedded broker listen address' }),
      port: Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: 1883,
        description: 'embedded broker MQTT/TCP port (0: any free port)',
      }),
      tlsPort: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()], {
        default: null,
        description: 'embedded broker MQTT/TLS port (standard 8883); null: no TLS listener',
      }),
      wsPort: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()], {
        default: null,
        description: 'embedded broker WebSocket port; null: none',
      }),
      tlsCertFile: Type.Union([Type.String(), Type.Null()], { default: null, description: 'server certificate (PEM)' }),
      tlsKeyFile: Type.Union([Type.String(), Type.Null()], { default: null, description: 'server key (PEM)' }),
      tlsCaFile: Type.Union([Type.String(), Type.Null()], {
        default: null,
        description: 'CA handed to boxes at provisioning',
      }),
      externalUrl: Type.String({ default: 'mqtt://127.0.0.1:1883', description: 'broker URL in external mode' }),
      maxPayloadBytes: Type.Integer({
        minimum: 1024,
        maximum: 16_777_216,
        default: 262_144,
        description: 'largest accepted message',
      }),
      connectTimeoutMs: Millis('a client must send CONNECT within', {
        default: 10_000,
        minimum: 500,
        maximum: 120_000,
      }),
    },
    'the MQTT broker',
  ),
  store: Section(
    {
      kind: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], {
        default: 'sqlite',
        description: 'where the registry and events live',
      }),
      sqlitePath: Type.String({ default: '/var/lib/callbox-fleet/fleet.db', description: 'SQLite file' }),
      postgresUrl: Type.String({
        default: 'postgres://127.0.0.1:5432/callbox',
        description: 'PostgreSQL connection string',
      }),
    },
    'the fleet store',
  ),
  http: Section(
    {
      host: Type.String({ default: '127.0.0.1', description: 'API and dashboard listen address' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'API and dashboard port' }),
    },
    'the HTTP API and dashboard',
  ),
  presence: Section(
    {
      offlineAfterS: Seconds('a box silent this long is offline, whatever its retained status says', {
        default: 180,
        minimum: 10,
        maximum: 86_400,
      }),
    },
    'presence',
  ),
  log: Section(
    { level: Type.String({ default: 'info', description: 'level, with per-namespace overrides' }) },
    'logging',
  ),
});

export type FleetConfig = Static<typeof FleetConfigSchema>;
export const FLEET_ENV_PREFIX = 'CALLBOX_FLEET';

export function loadFleetConfig(file?: string, values?: Record<string, unknown>, env = process.env): FleetConfig {
  return loadConfig({
    schema: FleetConfigSchema,
    what: 'fleet configuration',
    file,
    ...(values ? { values } : {}),
    envPrefix: FLEET_ENV_PREFIX,
    env,
  });
}
