/**
 * Alert settings.
 *
 * AlertsConfigSchema: the fleet-wide section (`alerts:` in fleet.yaml once the
 * composition root adds it): the signing secret of acknowledgement links, the
 * public URL they point at, the engine's cadence, the default webhooks and
 * SMTP server.
 *
 * ClinicAlertSettingsSchema: per clinic, kept in the alert store and changed
 * over the ops API. Every field has a sane default, so a clinic with no
 * settings at all still gets: panic -> critical at once; 3 unanswered calls in
 * 10 minutes during hours -> rollover alert; a missed call after hours -> a
 * notice; a box offline 5 minutes during hours -> critical; a modem without
 * signal, SIM or registration for 5 minutes -> warning; a voicemail unheard
 * for 60 minutes -> warning; an outbox that grew over 5 telemetry samples ->
 * warning; a voicemail whose recording failed (the caller's message is lost)
 * -> warning; an online box that has not applied its desired configuration
 * within alerts.configDriftS -> warning. Durations say their unit in their name.
 */
import { Value } from '@sinclair/typebox/value';
import { ALERT_CONDITIONS } from '../../shared/contract/alerts-ops.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import {
  ClockTime,
  Millis,
  Minutes,
  Nullable,
  PhoneNumber,
  Seconds,
  Section,
  type Static,
  Strict,
  Timestamp,
  Type,
} from '../../shared/schema.js';
import { formatProblems, problemsOf } from '../../shared/validate.js';

export const CHANNELS = ['webhook', 'sms', 'email'] as const;
export type ChannelName = (typeof CHANNELS)[number];
const Channel = Type.Union(
  CHANNELS.map((c) => Type.Literal(c)),
  { description: 'webhook, sms or email' },
);

export const SEVERITIES = ['critical', 'warning', 'notice'] as const;
export type Severity = (typeof SEVERITIES)[number];
const SeverityT = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));

/** The conditions the engine raises (the list lives in the ops contract). */
export const CONDITIONS = ALERT_CONDITIONS;
export type Condition = (typeof CONDITIONS)[number];
const ConditionT = Type.Union(CONDITIONS.map((c) => Type.Literal(c)));

export const AlertContact = Strict({
  name: Type.String({ minLength: 1, maxLength: 120 }),
  phone: Type.Optional(PhoneNumber('SMS number')),
  email: Type.Optional(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 254 })),
});
export type AlertContact = Static<typeof AlertContact>;

export const EscalationStep = Strict({
  to: Type.Array(Type.String({ minLength: 1, maxLength: 120 }), {
    default: [],
    maxItems: 50,
    description: 'contact names or group names; "*" is every contact of the clinic',
  }),
  channels: Type.Array(Channel, { minItems: 1, maxItems: 3, description: 'how this step notifies' }),
  waitMin: Minutes('wait before the next step when nobody acknowledged', { default: 5, minimum: 0, maximum: 1440 }),
});
export type EscalationStep = Static<typeof EscalationStep>;

export const EscalationPolicy = Strict({
  steps: Type.Array(EscalationStep, { minItems: 1, maxItems: 20 }),
  repeat: Type.Integer({
    minimum: 1,
    maximum: 20,
    default: 3,
    description: 'times the whole list of steps runs before the escalation stops (the alert stays open)',
  }),
});
export type EscalationPolicy = Static<typeof EscalationPolicy>;

export const Webhook = Strict({
  url: Type.String({ pattern: '^https?://', maxLength: 2000 }),
  secret: Type.String({ minLength: 8, maxLength: 256, description: 'HMAC-SHA256 key of the signature header' }),
});
export type Webhook = Static<typeof Webhook>;

export const SilenceWindow = Strict({
  from: Timestamp('silence starts'),
  until: Timestamp('silence ends'),
  conditions: Type.Optional(
    Type.Array(ConditionT, {
      description: 'conditions silenced; absent: every condition except panic and voicemail_urgent',
    }),
  ),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
});
export type SilenceWindow = Static<typeof SilenceWindow>;

const DEFAULT_POLICIES = {
  critical: {
    steps: [
      { to: ['*'], channels: ['webhook', 'sms', 'email'], waitMin: 2 },
      { to: ['*'], channels: ['webhook', 'sms', 'email'], waitMin: 5 },
    ],
    repeat: 5,
  },
  warning: { steps: [{ to: ['*'], channels: ['webhook', 'email'], waitMin: 30 }], repeat: 3 },
  notice: { steps: [{ to: ['*'], channels: ['webhook', 'email'], waitMin: 0 }], repeat: 1 },
} satisfies Record<Severity, EscalationPolicy>;

export const ClinicAlertSettingsSchema = Strict(
  {
    contacts: Type.Array(AlertContact, {
      default: [],
      maxItems: 50,
      description: "who may be notified; empty: the clinic's contacts in the registry",
    }),
    groups: Type.Record(Type.String(), Type.Array(Type.String()), {
      default: {},
      description: 'named lists of contact names',
    }),
    webhooks: Type.Array(Webhook, {
      default: [],
      maxItems: 10,
      description: 'called by every step that has the webhook channel, with the fleet-wide ones',
    }),
    policies: Type.Record(Type.String(), EscalationPolicy, {
      default: DEFAULT_POLICIES,
      description: 'escalation policy per severity (critical, warning, notice)',
    }),
    ackTimeoutMin: Minutes('an acknowledged alert not resolved in this time opens again and escalates', {
      default: 60,
      minimum: 1,
      maximum: 10_080,
    }),
    silences: Type.Array(SilenceWindow, { default: [], maxItems: 50 }),
    hours: {
      ...Nullable(
        Type.Record(Type.String(), Type.Array(Strict({ open: ClockTime('opens'), close: ClockTime('closes') }))),
      ),
      default: null,
      description: "opening hours per weekday (mon..sun); null: the hours in the clinic's box settings",
    },
    rules: Section(
      {
        panic: Section({ severity: { ...SeverityT, default: 'critical' } }, 'a panic press'),
        missedCalls: Section(
          {
            count: Type.Integer({ minimum: 1, maximum: 1000, default: 3, description: 'unanswered calls ...' }),
            windowMin: Minutes('... within this time during hours raise the rollover alert', {
              default: 10,
              minimum: 1,
              maximum: 1440,
            }),
            autoRollover: Type.Boolean({
              default: false,
              description: "switch the clinic's calls to its answering service when the alert opens",
            }),
            severity: { ...SeverityT, default: 'warning' },
          },
          'unanswered calls during hours',
        ),
        missedAfterHours: Section(
          { enabled: Type.Boolean({ default: true }), severity: { ...SeverityT, default: 'notice' } },
          'any missed call after hours',
        ),
        slowAnswer: Section(
          {
            targetS: Seconds('answer within', { default: 30, minimum: 1, maximum: 600 }),
            severity: { ...SeverityT, default: 'notice' },
          },
          'time to answer above the target',
        ),
        boxOffline: Section(
          {
            afterMin: Minutes('a box offline this long during hours', { default: 5, minimum: 1, maximum: 1440 }),
            severity: { ...SeverityT, default: 'critical' },
          },
          'a box offline',
        ),
        modem: Section(
          {
            afterMin: Minutes('no signal, SIM problem or registration denied this long', {
              default: 5,
              minimum: 0,
              maximum: 1440,
            }),
            severity: { ...SeverityT, default: 'warning' },
          },
          'modem health',
        ),
        voicemail: Section(
          {
            unheardMin: Minutes('a voicemail not heard in this time', { default: 60, minimum: 1, maximum: 10_080 }),
            severity: { ...SeverityT, default: 'warning' },
          },
          'voicemail not heard',
        ),
        voicemailFailed: Section(
          { severity: { ...SeverityT, default: 'warning' } },
          "a voicemail whose recording failed: the caller's message is lost, someone must call back",
        ),
        voicemailUrgent: Section(
          { severity: { ...SeverityT, default: 'critical' } },
          'a voicemail triaged urgent (an urgent phrase or strong stress cues), or one that could not be triaged: escalates like a panic press, never held back by a silence window unless it lists voicemail_urgent',
        ),
        configDrift: Section(
          { severity: { ...SeverityT, default: 'warning' } },
          'a box running another configuration than the desired one for longer than alerts.configDriftS',
        ),
        outbox: Section(
          {
            growingSamples: Type.Integer({
              minimum: 2,
              maximum: 1000,
              default: 5,
              description: 'telemetry samples in a row with a larger outbox',
            }),
            minDepth: Type.Integer({ minimum: 0, default: 50, description: 'ignored below this depth' }),
            severity: { ...SeverityT, default: 'warning' },
          },
          'an outbox backlog that keeps growing',
        ),
        rollover: Section(
          {
            backAfter: Type.Union([Type.Literal('manual'), Type.Literal('answered')], {
              default: 'answered',
              description:
                'roll back by hand (or at the scheduled end given when it started) only; or also when the clinic answers a call again',
            }),
            severity: { ...SeverityT, default: 'warning' },
          },
          'rollover to the answering service',
        ),
      },
      'rules',
    ),
  },
  { description: "one clinic's alert settings" },
);
export type ClinicAlertSettings = Static<typeof ClinicAlertSettingsSchema>;

/** Fill defaults and validate; a CallboxError naming field and value on bad input. */
export function clinicAlertSettings(input: unknown = {}): ClinicAlertSettings {
  const value = Value.Default(ClinicAlertSettingsSchema, Value.Clone(input ?? {}));
  const problems = problemsOf(ClinicAlertSettingsSchema, value);
  if (problems.length > 0) {
    throw new CallboxError(ErrorCode.ValidationFailed, `alert settings are invalid: ${formatProblems(problems)}`, {
      problems,
    });
  }
  const s = value as ClinicAlertSettings;
  for (const sev of SEVERITIES) {
    if (!s.policies[sev]) s.policies[sev] = DEFAULT_POLICIES[sev];
  }
  return s;
}

export const AlertsConfigSchema = Section(
  {
    linkSecret: Type.String({
      default: '',
      description: 'HMAC key of acknowledgement links (empty: a random one per start, links die at restart)',
    }),
    publicUrl: Type.String({
      default: 'http://127.0.0.1:8080',
      description: 'base URL of the fleet HTTP server as people reach it (acknowledgement links)',
    }),
    linkTtlH: Type.Integer({ minimum: 1, maximum: 720, default: 72, description: 'links stay valid (hours)' }),
    instance: Type.String({
      default: 'fleet',
      maxLength: 64,
      description: 'name of this fleet instance; an escalation step is leased by one instance at a time',
    }),
    leaseS: Seconds('an instance that died holding an escalation step or the event cursor loses it after', {
      default: 60,
      minimum: 1,
      maximum: 3600,
    }),
    sweepS: Seconds('conditions (offline, unheard, timeouts) are checked every', {
      default: 15,
      minimum: 1,
      maximum: 600,
    }),
    eventPollMs: Millis('stored events are looked for every (besides at once when this instance stores one)', {
      default: 1000,
      minimum: 50,
      maximum: 60_000,
    }),
    eventBatch: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 500,
      description: 'stored events read and applied at a time (the cursor moves after each batch)',
    }),
    webhooks: Type.Array(Webhook, { default: [], description: 'called for every alert of every clinic' }),
    webhookTimeoutMs: Millis('one webhook attempt may take', { default: 5000, minimum: 100, maximum: 60_000 }),
    webhookAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 4, description: 'attempts per webhook call' }),
    webhookBackoffMs: Millis('first wait between webhook attempts (doubles each time)', {
      default: 1000,
      minimum: 10,
      maximum: 60_000,
    }),
    smsTimeoutMs: Millis('an SMS sent through a box waits for its answer', {
      default: 60_000,
      minimum: 1000,
      maximum: 300_000,
    }),
    smtpUrl: Type.Union([Type.String(), Type.Null()], {
      default: null,
      description: 'SMTP server, e.g. smtp://user:pass@mail.example:587; null: no email',
    }),
    emailFrom: Type.String({ default: 'Callbox alerts <alerts@callbox.local>', description: 'sender of alert email' }),
    configDriftS: Seconds(
      'an online box whose reported configuration version differs from the desired one this long raises config_drift',
      { default: 600, minimum: 30, maximum: 604_800 },
    ),
    forwardingTimeoutMs: Millis('a forwarding change on a box waits for its confirmation', {
      default: 90_000,
      minimum: 1000,
      maximum: 600_000,
    }),
  },
  'the alert engine',
);
export type AlertsConfig = Static<typeof AlertsConfigSchema>;

export function alertsConfig(input: Partial<AlertsConfig> = {}): AlertsConfig {
  const value = Value.Default(AlertsConfigSchema, Value.Clone(input));
  const problems = problemsOf(AlertsConfigSchema, value);
  if (problems.length > 0) {
    throw new CallboxError(ErrorCode.ConfigInvalid, `alerts configuration is invalid: ${formatProblems(problems)}`, {
      problems,
    });
  }
  return value as AlertsConfig;
}
