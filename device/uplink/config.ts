import { BrokerUrl, Millis, Seconds, Section, Type } from '../../shared/schema.js';

/** The MQTT link and outbox sections of the box configuration (owned by device/uplink). */
export const MqttConfigSchema = Section(
  {
    url: BrokerUrl('fleet broker; TLS (mqtts://) off loopback', 'mqtts://fleet.callbox.local:8883'),
    urls: Type.Array(Type.String({ format: 'broker-url' }), {
      default: [],
      maxItems: 16,
      description:
        'more brokers of the same engine (a cluster, docs/CLUSTER.md): the box is on one of url and these at a time and, when it fails, moves to the next in turn; []: url only',
    }),
    caFile: Type.Union([Type.String(), Type.Null()], {
      default: null,
      description: 'CA certificate to pin for TLS (PEM); provisioning may replace it',
    }),
    keepaliveS: Seconds('MQTT keepalive', { default: 30, minimum: 5, maximum: 1200 }),
    connectTimeoutMs: Millis('give up one connection attempt after', {
      default: 10_000,
      minimum: 1000,
      maximum: 120_000,
    }),
    reconnectMinMs: Millis('first reconnect delay (jittered, doubling)', {
      default: 1000,
      minimum: 100,
      maximum: 60_000,
    }),
    reconnectMaxMs: Millis('longest reconnect delay', { default: 60_000, minimum: 1000, maximum: 3_600_000 }),
    requestTimeoutMs: Millis('wait for an answer from the fleet', { default: 15_000, minimum: 500, maximum: 300_000 }),
    claimRetryS: Seconds('ask again this often while a claim is pending or refused', {
      default: 30,
      minimum: 1,
      maximum: 3600,
    }),
  },
  'the MQTT link to the fleet',
);

export const OutboxConfigSchema = Section(
  {
    maxEvents: Type.Integer({
      minimum: 1000,
      maximum: 10_000_000,
      default: 500_000,
      description:
        'undelivered events kept; when full, telemetry-like events are coalesced, panic and voicemail never dropped',
    }),
    publishBatch: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 100,
      description: 'events in one MQTT message at most (a backlog travels in batches)',
    }),
    batchMaxBytes: Type.Integer({
      minimum: 4096,
      maximum: 1_048_576,
      default: 65_536,
      description: 'bytes in one MQTT message at most (keep below the broker limit, mqtt.maxPayloadBytes)',
    }),
    batchesInFlight: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 4,
      description: 'messages sent and not yet receipted by the fleet at once',
    }),
    receiptTimeoutMs: Millis('no receipt from the fleet for this long: send the unreceipted events again', {
      default: 15_000,
      minimum: 500,
      maximum: 600_000,
    }),
    receiptTimeoutMaxMs: Millis('longest wait between resends while the fleet stays silent (the wait doubles)', {
      default: 300_000,
      minimum: 1000,
      maximum: 3_600_000,
    }),
    minFreeMb: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 64,
      description:
        'free disk (MiB) the outbox keeps in reserve: below it only panic and voicemail events are still accepted',
    }),
    flushDelayMs: Millis('wait this long to gather more events into one commit (group commit)', {
      default: 2,
      minimum: 0,
      maximum: 100,
    }),
  },
  'the durable outbox',
);
