import { loadConfig } from '../../shared/config.js';
import { Millis, Seconds, Section, type Static, Type } from '../../shared/schema.js';

/** The modem section of the box configuration (owned by device/modem). */
export const ModemConfigSchema = Section(
  {
    path: Type.String({
      minLength: 1,
      default: '/dev/serial/by-id/usb-modem-if02',
      description:
        'AT port of the modem: a stable /dev/serial/by-id/ name (picks the USB interface, not a ttyUSB number), or tcp://host:port for ser2net',
    }),
    baudRate: Type.Integer({ minimum: 1200, maximum: 4_000_000, default: 115200, description: 'serial speed in baud' }),
    rtscts: Type.Boolean({ default: false, description: 'hardware flow control (RTS/CTS)' }),
    profile: Type.Union(
      [
        Type.Literal('auto'),
        Type.Literal('generic'),
        Type.Literal('sim7600'),
        Type.Literal('sim800'),
        Type.Literal('ec25'),
        Type.Literal('huawei'),
      ],
      { default: 'auto', description: 'vendor quirks; auto picks from AT+CGMI/AT+CGMM' },
    ),
    commandTimeoutMs: Millis('default time a plain AT command may take', {
      default: 5000,
      minimum: 200,
      maximum: 60_000,
    }),
    callControlTimeoutMs: Millis('time ATA, AT+CHUP, AT+CTFR and AT+CHLD may take', {
      default: 20_000,
      minimum: 1000,
      maximum: 120_000,
    }),
    networkTimeoutMs: Millis('time network queries (AT+COPS, AT+CCFC, AT+CUSD) may take', {
      default: 60_000,
      minimum: 1000,
      maximum: 180_000,
    }),
    smsTimeoutMs: Millis('time AT+CMGS may take to be accepted by the network', {
      default: 60_000,
      minimum: 1000,
      maximum: 180_000,
    }),
    livenessMs: Millis(
      'liveness probe: while ready and idle, a modem silent this long is sent AT; no answer within the same time means the port is stalled (closed and reopened), so a vanished port is noticed within about 2.5 times this even when nothing is being sent',
      { default: 2000, minimum: 500, maximum: 600_000 },
    ),
    maxConsecutiveTimeouts: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 10,
      description: 'consecutive command timeouts before a soft reset (one timeout never resets)',
    }),
    reopenMinMs: Millis('first wait before reopening a vanished port', { default: 500, minimum: 50, maximum: 60_000 }),
    reopenMaxMs: Millis('longest wait between reopen attempts', { default: 30_000, minimum: 1000, maximum: 600_000 }),
    ringEndMs: Millis('a ringing call with no new RING for this long is checked with AT+CLCC and ended if gone', {
      default: 10_000,
      minimum: 1000,
      maximum: 60_000,
    }),
    clipWaitMs: Millis('after a RING, how long to wait for its +CLIP before reporting the ring without a number', {
      default: 300,
      minimum: 0,
      maximum: 5000,
    }),
    callPollMs: Millis('poll AT+CLCC this often while a call is listed (catches ends the modem did not report)', {
      default: 3000,
      minimum: 250,
      maximum: 60_000,
    }),
    networkPollS: Seconds('refresh registration and signal (AT+CREG?, AT+CSQ) this often', {
      default: 60,
      minimum: 5,
      maximum: 3600,
    }),
    resyncQuietMs: Millis('after a timeout, the quiet time after an OK to AT that proves stale replies are drained', {
      default: 150,
      minimum: 20,
      maximum: 5000,
    }),
    deleteSmsAfterRead: Type.Boolean({
      default: true,
      description:
        'delete a received SMS from the SIM once its sms.received event is committed to the outbox (the SIM holds few); false keeps them on the SIM',
    }),
    smsConcatWaitS: Seconds(
      'how long to wait for the missing parts of a long received SMS before reporting what came',
      {
        default: 120,
        minimum: 5,
        maximum: 3600,
      },
    ),
    pin: Type.Union([Type.String({ pattern: '^\\d{4,8}$' }), Type.Null()], {
      default: null,
      description: 'SIM PIN, if the SIM asks for one',
    }),
  },
  'the GSM modem',
);

export type ModemConfig = Static<typeof ModemConfigSchema>;

/** A complete modem configuration from partial values (defaults filled in, checked like the config file). */
export function modemConfig(values: Partial<ModemConfig> = {}): ModemConfig {
  return loadConfig({ schema: ModemConfigSchema, what: 'modem configuration', values });
}
