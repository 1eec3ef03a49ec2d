/**
 * The fleet service's configuration: /etc/callbox/fleet.yaml (or --config),
 * overridden by CALLBOX_FLEET__* environment variables.
 */
import { isAbsolute, join } from 'node:path';
import { loadConfig } from '../shared/config.js';
import { BrokerUrl, Millis, Seconds, Section, type Static, Strict, Type } from '../shared/schema.js';
import { AlertsConfigSchema } from './alerts/config.js';
import { PatientsConfigSchema } from './patients/config.js';
import { TriageConfigSchema } from './triage/config.js';

export const FleetConfigSchema = Strict({
  data: Section(
    {
      dir: Type.String({
        default: 'var',
        minLength: 1,
        description:
          'the one folder for everything the fleet keeps (store, admin password, voicemail); relative file settings ' +
          'below are under it (the systemd unit sets /var/lib/callbox-fleet)',
      }),
    },
    "the fleet's data folder",
  ),
  mqtt: Section(
    {
      mode: Type.Union([Type.Literal('embedded'), Type.Literal('external'), Type.Literal('cluster')], {
        default: 'embedded',
        description:
          'embedded: run aedes here; external: use the broker at externalUrl (Mosquitto); cluster: use the NATS engine at clusterMqttUrls / clusterNatsUrls (docs/CLUSTER.md)',
      }),
      host: Type.String({
        default: '0.0.0.0',
        description:
          'embedded broker listen address: all interfaces by default, as the boxes connect from the clinics; the ops HTTP API stays on loopback (http.host). Off a trusted network run TLS only (port: null, tlsPort: 8883)',
      }),
      port: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()], {
        default: 1883,
        description:
          'embedded broker plaintext MQTT/TCP port (0: any free port); null: no plaintext listener (TLS only: set tlsPort, tlsCertFile, tlsKeyFile); the fleet then talks to its broker on a loopback listener only its own login may use',
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
      externalUrl: BrokerUrl('broker URL in external mode', 'mqtt://127.0.0.1:1883'),
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
      maxTopicLevels: Type.Integer({
        minimum: 4,
        maximum: 100,
        default: 8,
        description: 'deepest topic accepted (the contract needs 5)',
      }),
      ratePerSecond: Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 50,
        description:
          'sustained messages per second one box, claim or ops identity may publish, all its connections together (above: disconnected)',
      }),
      rateBurst: Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 500,
        description: 'messages a client may publish in a burst above the rate (an outbox catching up)',
      }),
      claimTrustOnFirstUse: Type.Boolean({
        default: true,
        description:
          'embedded broker: the first claim secret presented for an unknown serial is recorded as its secret and the claim waits for ops; false: only serials registered with their secret may claim',
      }),
      claimNewPerSourcePerMinute: Type.Integer({
        minimum: 1,
        maximum: 10_000,
        default: 10,
        description:
          'embedded broker: unknown serials one source address may bring per minute (trust on first use); above: refused before any hashing',
      }),
      authFailuresPerSourcePerMinute: Type.Integer({
        minimum: 1,
        maximum: 100_000,
        default: 60,
        description:
          'embedded broker: failed password checks one source address may cost per minute; above, its logins are refused before any hashing (logins already verified are not affected)',
      }),
      claimPendingMax: Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 200,
        description: 'embedded broker: unknown serials waiting for ops at most; above: new ones are refused',
      }),
      claimPendingExpiryH: Type.Integer({
        minimum: 1,
        maximum: 8760,
        default: 168,
        description:
          'a claim of an unknown serial left waiting for ops this long (hours) is forgotten: its box row and claim secret go, and the serial may claim anew',
      }),
      externalUsername: Type.String({
        default: 'fleet:core',
        pattern: '^fleet:[a-z0-9][a-z0-9-]{0,30}$',
        description:
          'external and cluster modes: the fleet logs in to the broker as this user (fleet:<name>); in cluster mode each fleet worker has its own',
      }),
      externalPasswordFile: Type.Union([Type.String(), Type.Null()], {
        default: null,
        description:
          'external and cluster modes: file holding the fleet password (written by `fleet mosquitto-config`, or by `npm run cluster -- up` in <dir>/secrets/)',
      }),
      clusterMqttUrls: Type.Array(Type.String({ format: 'broker-url' }), {
        default: [],
        maxItems: 16,
        description:
          "cluster mode: the MQTT listeners of the engine's nodes; the fleet's MQTT client is on one at a time and moves to the next when it fails (boxes list the same in their mqtt.url and mqtt.urls)",
      }),
      clusterNatsUrls: Type.Array(Type.String({ pattern: '^(nats|tls)://[^\\s/]+:[0-9]{1,5}$' }), {
        default: [],
        maxItems: 16,
        description:
          "cluster mode: the NATS client listeners of the engine's nodes (nats://host:port): the fleet keeps the engine's users there (the callbox_auth bucket the auth agents read)",
      }),
      externalMaxQueuedMessages: Type.Integer({
        minimum: 1000,
        maximum: 100_000_000,
        default: 1_000_000,
        description:
          "external mode: Mosquitto's max_queued_messages written by `fleet mosquitto-config` (per client: the fleet's session holds the events of every box while the fleet is away or behind; size it as boxes x events/s x the longest fleet outage to ride through, with room). The fleet watches the broker's store and logs a warning at half, an error at 80 % and on any drop",
      }),
      externalMaxQueuedBytes: Type.Integer({
        minimum: 1_048_576,
        maximum: 68_719_476_736,
        default: 1_073_741_824,
        description: "external mode: Mosquitto's max_queued_bytes written by `fleet mosquitto-config` (per client)",
      }),
      reconnectMs: Millis('the fleet reconnects to the broker after', { default: 500, minimum: 50, maximum: 60_000 }),
      publicUrl: Type.Union([Type.String({ format: 'broker-url' }), Type.Null()], {
        default: null,
        description: 'broker URL handed to boxes at provisioning; null: the one they claimed on',
      }),
    },
    'the MQTT broker',
  ),
  instance: Section(
    {
      id: Type.Union([Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' }), Type.Null()], {
        default: null,
        description:
          'this fleet process among several fleet workers on one store and broker (lowercase letters, digits, dashes; up to 32): its broker client id is fleet-<user>-<id> (the login name without "fleet:") and it leases alert steps and the event cursor under this name. null: one fleet (client id fleet-<user>, leases as alerts.instance); set a different one on every worker',
      }),
    },
    'this fleet process (several fleet workers: docs/CLUSTER.md)',
  ),
  store: Section(
    {
      kind: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], {
        default: 'sqlite',
        description: 'where the registry and events live',
      }),
      sqlitePath: Type.String({
        default: 'fleet.db',
        description: 'SQLite file (relative: under data.dir); the alert store lives beside it',
      }),
      postgresUrl: Type.String({
        default: 'postgres://127.0.0.1:5432/callbox',
        description: 'PostgreSQL connection string',
      }),
      keyFile: Type.Union([Type.String(), Type.Null()], {
        default: null,
        description:
          'keys that encrypt patient data at rest (caller numbers and SMS texts in stored events, voicemail): one "<id> <base64 key>" a line, the last one current; made (0600) at the first start; null: keys/fleet-data.key beside the SQLite file (var/keys/ with PostgreSQL). In production keep it apart from the data and its backups (docs/SECURITY.md)',
      }),
    },
    'the fleet store',
  ),
  http: Section(
    {
      host: Type.String({ default: '127.0.0.1', description: 'API and dashboard listen address' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'API and dashboard port' }),
      tlsCertFile: Type.Union([Type.String(), Type.Null()], {
        default: null,
        description:
          'serve HTTPS with this certificate (PEM; with tlsKeyFile); null: plain HTTP (loopback or behind a TLS proxy)',
      }),
      tlsKeyFile: Type.Union([Type.String(), Type.Null()], { default: null, description: 'HTTPS key (PEM)' }),
      secureCookies: Type.Boolean({
        default: false,
        description:
          'mark the session cookie Secure even when this server speaks plain HTTP (set it behind a TLS proxy); with tlsCertFile it is always Secure',
      }),
      sessionIdleMin: Type.Integer({
        minimum: 1,
        maximum: 1440,
        default: 30,
        description: 'a sign-in session unused this long (minutes) ends',
      }),
      sessionAbsoluteH: Type.Integer({
        minimum: 1,
        maximum: 720,
        default: 12,
        description: 'a sign-in session ends this long (hours) after sign-in, used or not',
      }),
      loginPerMinute: Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: 10,
        description:
          'sign-in attempts (right or wrong) one address may make for one user name per minute (above: 429 with Retry-After)',
      }),
      metricsTokenFile: Type.Union([Type.String(), Type.Null()], {
        default: null,
        description:
          '/metrics asks for `Authorization: Bearer <token>` with the token in this file; null: /metrics is open (keep http.host on loopback or the ops network)',
      }),
      liveBuffer: Type.Integer({
        minimum: 10,
        maximum: 100_000,
        default: 1000,
        description:
          'live stream (/api/v1/live): messages kept for clients that reconnect with Last-Event-ID; older: they are told to reload',
      }),
    },
    'the HTTP API and dashboard',
  ),
  ingest: Section(
    {
      batchMax: Type.Integer({
        minimum: 1,
        maximum: 5000,
        default: 500,
        description: 'events written by one INSERT at most',
      }),
      flushMs: Millis('events wait at most this long to be written with others', {
        default: 10,
        minimum: 0,
        maximum: 1000,
      }),
      source: Type.Union([Type.Literal('mqtt'), Type.Literal('shared'), Type.Literal('jetstream')], {
        default: 'mqtt',
        description:
          "where box events are read: mqtt: the fleet's own subscription (one fleet); shared: an MQTT shared subscription $share/fleet/... (Mosquitto 2; several workers each get a share); jetstream: a durable JetStream pull consumer shared by the workers over the stream that holds the boxes' events (NATS; needs ingest.natsUrls)",
      }),
      natsUrls: Type.Array(Type.String({ minLength: 1 }), {
        default: [],
        description:
          'ingest.source jetstream: NATS client URLs of the engine nodes (nats://host:4222), any of which may fail; empty: mqtt.clusterNatsUrls. The fleet logs in with its broker login (mqtt.externalUsername and mqtt.externalPasswordFile)',
      }),
      ackWaitMs: Millis(
        'ingest.source jetstream: box events a worker took and did not store are given to another worker after',
        {
          default: 30_000,
          minimum: 1000,
          maximum: 600_000,
        },
      ),
      streamReplicas: Type.Integer({
        minimum: 1,
        maximum: 5,
        default: 1,
        description:
          "ingest.source jetstream: copies of the events stream the engine keeps (3 on a three-node engine: a node's loss loses nothing)",
      }),
      maxQueued: Type.Integer({
        minimum: 100,
        maximum: 1_000_000,
        default: 20_000,
        description:
          'events received and not yet stored above which the fleet stops reading from the broker (backpressure) until the store catches up',
      }),
    },
    'event ingest',
  ),
  ops: Section(
    {
      bootstrapUser: Type.String({
        default: 'admin',
        description: 'ops admin created at the first start when there is none',
      }),
      bootstrapPasswordFile: Type.String({
        default: 'fleet-admin.secret',
        description:
          'where the first admin password is written (mode 0600; relative: under data.dir); the CLI reads it',
      }),
      commandTimeoutMs: Millis('a command sent to a box waits for its answer', {
        default: 15_000,
        minimum: 100,
        maximum: 600_000,
      }),
    },
    'ops users and the ops API',
  ),
  presence: Section(
    {
      offlineAfterS: Seconds('a box silent this long is offline, whatever its retained status says', {
        default: 180,
        minimum: 10,
        maximum: 86_400,
      }),
      flushS: Seconds('last-seen times are written to the store every', { default: 10, minimum: 1, maximum: 3600 }),
    },
    'presence',
  ),
  alerts: AlertsConfigSchema,
  patients: PatientsConfigSchema,
  voicemail: Section(
    {
      dir: Type.String({
        default: 'voicemail',
        description: 'where confirmed voicemails are kept, one folder per box (relative: under data.dir)',
      }),
    },
    'voicemail received from the boxes',
  ),
  triage: TriageConfigSchema,
  updates: Section(
    {
      dir: Type.String({
        default: 'releases',
        description: 'where uploaded release tarballs are kept (relative: under data.dir)',
      }),
      publicKeyFiles: Type.Array(Type.String({ minLength: 1 }), {
        default: [],
        description:
          'release signing public keys (PEM files from `fleet release keygen`) whose signatures the fleet accepts; the private key stays offline. Empty: releases cannot be uploaded',
      }),
    },
    'over-the-air updates: signed releases and staged rollouts',
  ),
  figures: Section(
    {
      eventBatch: Type.Integer({
        minimum: 1,
        maximum: 10_000,
        default: 1000,
        description: 'stored events applied to the call figures in one transaction (the figures cursor moves with it)',
      }),
      pollMs: Millis('stored events are looked for every (besides at once when this instance stores one)', {
        default: 2000,
        minimum: 50,
        maximum: 60_000,
      }),
      hashKey: Type.String({
        default: '',
        description:
          'key of the keyed hash (HMAC-SHA256) of caller numbers that finds repeat calls; empty: derived from the first key of the patient-data key file (store.keyFile). Changing it makes earlier calls unknown to the repeat check',
      }),
    },
    'call figures (rollups of the call events per clinic)',
  ),
  telemetry: Section(
    {
      retentionDays: Type.Integer({
        minimum: 1,
        maximum: 3650,
        default: 30,
        description: 'telemetry samples are kept this many days after they were received',
      }),
      pruneEveryMin: Type.Integer({
        minimum: 1,
        maximum: 1440,
        default: 60,
        description: 'older telemetry is deleted every this many minutes',
      }),
    },
    'stored telemetry of the boxes',
  ),
  log: Section(
    { level: Type.String({ default: 'info', description: 'level, with per-namespace overrides' }) },
    'logging',
  ),
});

export type FleetConfig = Static<typeof FleetConfigSchema>;
export const FLEET_ENV_PREFIX = 'CALLBOX_FLEET';

export function loadFleetConfig(file?: string, values?: Record<string, unknown>, env = process.env): FleetConfig {
  const config = loadConfig({
    schema: FleetConfigSchema,
    what: 'fleet configuration',
    file,
    ...(values ? { values } : {}),
    envPrefix: FLEET_ENV_PREFIX,
    env,
  });
  return underDataDir(config);
}

/** Relative file settings live under data.dir (absolute ones stay where they are). */
export function underDataDir(config: FleetConfig): FleetConfig {
  const at = (p: string) => (isAbsolute(p) ? p : join(config.data.dir, p));
  return {
    ...config,
    store: { ...config.store, sqlitePath: at(config.store.sqlitePath) },
    ops: { ...config.ops, bootstrapPasswordFile: at(config.ops.bootstrapPasswordFile) },
    voicemail: { ...config.voicemail, dir: at(config.voicemail.dir) },
    http: {
      ...config.http,
      metricsTokenFile: config.http.metricsTokenFile === null ? null : at(config.http.metricsTokenFile),
    },
    updates: { ...config.updates, dir: at(config.updates.dir) },
  };
}
