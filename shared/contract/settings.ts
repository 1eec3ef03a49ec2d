/**
 * The box's remote settings: the desired configuration the fleet publishes
 * (retained, versioned) and the box validates with this same schema before
 * applying it whole. The box's local, on-disk configuration (serial port,
 * broker URL, data directory) is device/config.ts; this is what ops change.
 */
import {
  ClockTime,
  Hours,
  Millis,
  Minutes,
  Nullable,
  PhoneNumber,
  Seconds,
  Section,
  type Static,
  Strict,
  Timezone,
  Type,
} from '../schema.js';

export const OpenInterval = Strict(
  { open: ClockTime('opening time'), close: ClockTime('closing time') },
  { description: 'one opening interval; close after open' },
);

const Day = Type.Array(OpenInterval, { default: [], maxItems: 8, description: 'opening intervals of the day' });

export const WeeklyHours = Section(
  { mon: Day, tue: Day, wed: Day, thu: Day, fri: Day, sat: Day, sun: Day },
  'opening hours per weekday, in the clinic time zone; an empty list is closed all day',
);

export const Closure = Strict({
  date: Type.String({ format: 'date', description: 'a closed day (YYYY-MM-DD, clinic time zone)' }),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
});

export const CallMode = Type.Union(
  [
    Type.Literal('ring-then-rollover'),
    Type.Literal('ring-then-voicemail'),
    Type.Literal('rollover'),
    Type.Literal('voicemail'),
  ],
  { description: 'what a call does: ring, then roll over or voicemail; or at once' },
);

/** The greeting texts a clinic starts with (spoken only once a situation's mode is set to tts). */
export const DEFAULT_GREETINGS = {
  afterHours:
    'You have reached the clinic outside opening hours. Please leave your name, number and message after the tone.',
  lunch: 'The clinic is closed for lunch. Please leave your name, number and message after the tone.',
  busy: 'All our staff are busy. Please leave your name, number and message after the tone.',
} as const;

/** What the modem's text-to-speech takes in its ASCII mode: printable ASCII without the double quote. */
export const GREETING_TEXT_PATTERN = '^[\\x20\\x21\\x23-\\x7E]*$';

const Greeting = (text: string) =>
  Section(
    {
      mode: Type.Union([Type.Literal('tts'), Type.Literal('wav'), Type.Literal('none')], {
        default: 'none',
        description:
          "tts: the modem speaks `text` (SIMCom AT+CTTS, Quectel AT+QTTS; other modems play nothing); wav: `file` is played into the modem's audio path through ALSA (aplay); none: no greeting",
      }),
      text: Type.String({
        maxLength: 500,
        pattern: GREETING_TEXT_PATTERN,
        default: text,
        description: 'mode tts: what the modem says (printable ASCII, no double quote)',
      }),
      file: {
        ...Nullable(
          Type.String({
            pattern: '^/.+\\.wav$',
            maxLength: 300,
            description: 'mode wav: absolute path of a WAV file on the box',
          }),
        ),
        default: null,
        description:
          "mode wav: absolute path of a WAV file on the box (16-bit PCM at the modem's rate, e.g. 8000 Hz mono), played with aplay into audio.playbackDevice",
      },
    },
    'one greeting',
  );

export const DeviceSettingsSchema = Strict(
  {
    clinic: Section(
      {
        name: Type.String({
          minLength: 1,
          maxLength: 120,
          default: 'Clinic',
          description: 'clinic name used in SMS and alerts',
        }),
        timezone: { ...Timezone(), default: 'UTC' },
      },
      'the clinic this box serves',
    ),
    hours: Section(
      {
        weekly: WeeklyHours,
        lunch: { ...Nullable(Strict({ start: ClockTime('lunch start'), end: ClockTime('lunch end') })), default: null },
        closures: Type.Array(Closure, { default: [], maxItems: 366, description: 'closed days and holidays' }),
      },
      'opening hours, lunch break and closures',
    ),
    calls: Section(
      {
        inHours: { ...CallMode, default: 'ring-then-rollover' },
        afterHours: { ...CallMode, default: 'voicemail' },
        ringTimeoutS: Seconds('how long a call rings at the desk before rollover or voicemail', {
          default: 20,
          minimum: 5,
          maximum: 300,
        }),
        abandonedMaxS: Seconds('a caller who hangs up within this time of the first ring abandoned the call', {
          default: 5,
          minimum: 0,
          maximum: 60,
        }),
        ringLostAfterS: Seconds('a ringing call with no new RING for this long has ended', {
          default: 10,
          minimum: 4,
          maximum: 60,
        }),
        repeatCallerWindowH: Hours('a caller calling again within this time is a repeat caller', {
          default: 24,
          minimum: 1,
          maximum: 168,
        }),
      },
      'call handling',
    ),
    rollover: Section(
      {
        number: { ...Nullable(PhoneNumber('answering service or on-call number calls roll over to')), default: null },
        networkForwarding: Type.Boolean({
          default: true,
          description: 'register conditional forwarding (busy, no reply, not reachable) at the network',
        }),
        noReplyTimeS: Seconds('network no-reply forwarding time', { default: 20, minimum: 5, maximum: 30 }),
      },
      'rollover to the answering service',
    ),
    followUpSms: Section(
      {
        enabled: Type.Boolean({ default: false, description: 'text callers whose call was missed' }),
        text: Type.String({
          minLength: 1,
          maxLength: 480,
          default: 'Sorry we missed your call. We will call you back today.',
          description: 'the message sent',
        }),
        windowH: Hours('at most one follow-up per number within this time', { default: 24, minimum: 1, maximum: 168 }),
        excludePrefixes: Type.Array(Type.String({ pattern: '^\\+\\d{1,14}$' }), {
          default: [],
          description: 'numbers starting with these prefixes (landlines, premium) get no SMS',
        }),
      },
      'missed-call follow-up SMS',
    ),
    survey: Section(
      {
        enabled: Type.Boolean({
          default: false,
          description: 'after an answered call, text the caller a one-question survey; replies 1-5 are counted',
        }),
        text: Type.String({
          minLength: 1,
          maxLength: 320,
          default: 'How did we do today? Reply with a number from 1 (poor) to 5 (very good).',
          description: 'the survey SMS',
        }),
        delayS: Seconds('wait this long after the call ended before sending', {
          default: 120,
          minimum: 0,
          maximum: 86_400,
        }),
        windowH: Hours('at most one survey per number within this time (kept on the box across restarts)', {
          default: 720,
          minimum: 1,
          maximum: 8760,
        }),
        replyWindowH: Hours('a reply 1-5 within this time of the survey counts as its answer', {
          default: 48,
          minimum: 1,
          maximum: 720,
        }),
        maxAttempts: Type.Integer({
          minimum: 1,
          maximum: 10,
          default: 3,
          description: 'tries to send the survey SMS (30 s, doubling, between tries)',
        }),
        excludeNumbers: Type.Array(Type.String({ pattern: '^\\+\\d{1,15}$' }), {
          default: [],
          maxItems: 1000,
          description: 'numbers, or prefixes of numbers, never surveyed (staff, landlines, premium lines)',
        }),
        mobilePrefixes: Type.Array(Type.String({ pattern: '^\\+\\d{1,14}$' }), {
          default: [],
          maxItems: 100,
          description:
            'when set, only numbers starting with one of these are surveyed (mobile ranges, e.g. +447 in the UK); empty: every E.164 number not excluded',
        }),
      },
      'the after-call satisfaction survey by SMS',
    ),
    panic: Section(
      {
        holdMs: Millis('press and hold this long to confirm a panic', { default: 1000, minimum: 100, maximum: 10_000 }),
        cancelWindowMs: Millis('a second press within this time cancels', {
          default: 3000,
          minimum: 0,
          maximum: 30_000,
        }),
        ackTimeoutS: Seconds('without an acknowledgement from the fleet in this time, send SMS', {
          default: 10,
          minimum: 1,
          maximum: 600,
        }),
        contacts: Type.Array(PhoneNumber('escalation contact'), {
          default: [],
          maxItems: 10,
          description: 'who gets the SMS when the fleet does not acknowledge',
        }),
      },
      'the panic button',
    ),
    indicators: Section(
      {
        buzzerVolume: Type.Integer({ minimum: 0, maximum: 100, default: 70, description: 'buzzer volume in percent' }),
        quietHours: {
          ...Nullable(Strict({ start: ClockTime('quiet from'), end: ClockTime('quiet until') })),
          default: null,
        },
      },
      'LEDs and buzzer',
    ),
    telemetry: Section(
      {
        intervalS: Seconds('how often the box reports telemetry', { default: 60, minimum: 5, maximum: 3600 }),
      },
      'telemetry',
    ),
    voicemail: Section(
      {
        maxLengthS: Seconds('longest voicemail recorded', { default: 120, minimum: 10, maximum: 600 }),
        silenceDbfs: Type.Number({
          minimum: -90,
          maximum: -10,
          default: -45,
          description:
            'the recording counts as silent while its loudness (RMS of each 20 ms frame, dBFS: 0 is full scale) stays below this',
        }),
        silenceEndS: Seconds('the recording ends after this much trailing silence; 0 never ends on silence', {
          default: 4,
          minimum: 0,
          maximum: 60,
        }),
        toneAfterGreeting: Type.Boolean({
          default: true,
          description:
            'after a greeting that played to the end, the modem sends a tone to the caller (AT+VTS, half a second) as recording starts',
        }),
        greeting: Section(
          {
            afterHours: Greeting(DEFAULT_GREETINGS.afterHours),
            lunch: Greeting(DEFAULT_GREETINGS.lunch),
            busy: Greeting(DEFAULT_GREETINGS.busy),
          },
          'what a caller hears after the box answers for voicemail and before recording starts, per situation: after hours (closed, holiday), the lunch break, in hours when nobody answered (all staff busy)',
        ),
        unheardAlertMin: Minutes('alert when a voicemail is unheard this long', {
          default: 60,
          minimum: 5,
          maximum: 1440,
        }),
      },
      'voicemail',
    ),
  },
  { description: 'settings of one box, published by the fleet' },
);

export type DeviceSettings = Static<typeof DeviceSettingsSchema>;
