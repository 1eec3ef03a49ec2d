/**
 * Renders docs/PROTOCOL.md from the contract itself (topics, schemas,
 * method tables, examples). `npm run docs:protocol` rewrites the file; a
 * test fails when the file and the code disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { EVENT_BODIES, EVENT_SCHEMAS, EVENT_TYPES } from '../shared/contract/events.js';
import { EVENT_EXAMPLES, eventExample, MESSAGE_EXAMPLES } from '../shared/contract/examples.js';
import { DEVICE_COMMANDS, FLEET_REQUESTS, type MethodTable } from '../shared/contract/rpc.js';
import { NAMESPACE, TOPICS } from '../shared/contract/topics.js';

export const PROTOCOL_DOC_PATH = fileURLToPath(new URL('../docs/PROTOCOL.md', import.meta.url));

function typeOf(s: TSchema): string {
  if (Array.isArray(s.anyOf)) return (s.anyOf as TSchema[]).map(typeOf).join(' \\| ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.type === 'array') return `${typeOf(s.items as TSchema)}[]`;
  if (s.type === 'integer' || s.type === 'number') {
    const b = [s.minimum !== undefined ? `>=${s.minimum}` : '', s.maximum !== undefined ? `<=${s.maximum}` : '']
      .filter(Boolean)
      .join(' ');
    return b ? `${s.type} (${b})` : String(s.type);
  }
  if (s.type === 'string') {
    if (s.format) return `string (${s.format})`;
    if (s.pattern) return `string \`${s.pattern}\``;
    return 'string';
  }
  return String(s.type ?? 'any');
}

function fieldRows(s: TSchema, prefix: string, rows: string[]): void {
  const props = s.properties as Record<string, TSchema> | undefined;
  if (s.type !== 'object' || !props) return;
  const required = new Set((s.required as string[] | undefined) ?? []);
  for (const [k, child] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const desc = String(child.description ?? '').replace(/\|/g, '\\|');
    rows.push(`| \`${path}\` | ${typeOf(child)} | ${required.has(k) ? 'yes' : 'no'} | ${desc} |`);
    if (child.type === 'object' && path.split('.').length < 2) fieldRows(child, path, rows);
  }
}

function fieldTable(s: TSchema): string {
  const rows: string[] = [];
  fieldRows(s, '', rows);
  if (rows.length === 0) return '_no fields_';
  return ['| field | type | required | description |', '|---|---|---|---|', ...rows].join('\n');
}

function envelopeTable(): string {
  const { body: _body, ...rest } = EVENT_SCHEMAS['call.incoming'].properties;
  const rows: string[] = [];
  fieldRows({ type: 'object', properties: rest, required: Object.keys(rest) } as unknown as TSchema, '', rows);
  rows.push('| `body` | object | yes | the event, by `type`: see below |');
  return ['| field | type | required | description |', '|---|---|---|---|', ...rows].join('\n');
}

function json(v: unknown): string {
  return ['```json', JSON.stringify(v, null, 2), '```'].join('\n');
}

function methods(title: string, table: MethodTable, topic: string, intro?: string): string[] {
  const out = [`### ${title}`, '', `Requests on \`${topic}\`.`, '', ...(intro ? [intro, ''] : [])];
  for (const [name, spec] of Object.entries(table)) {
    const { role, clinic } = spec as { role?: string; clinic?: string };
    const who = role ? ` (role: ${role}${clinic ? `; clinic users: ${clinic} scope` : ''})` : '';
    out.push(`#### \`${name}\``, '', spec.description + who, '', 'Params:', '', fieldTable(spec.params), '');
    out.push('Example params and result:', '', json(spec.example.params), '', json(spec.example.result), '');
  }
  return out;
}

export function renderProtocolDoc(
  extraMethodTables: { title: string; table: MethodTable; topic: string; intro?: string }[] = [],
): string {
  const out: string[] = [
    '# Callbox MQTT protocol',
    '',
    '<!-- Generated from shared/contract by `npm run docs:protocol`; a test fails when this file and the code disagree. Do not edit by hand. -->',
    '',
    `Namespace \`${NAMESPACE}\`; the level after it is the device id (lower-case letters, digits, dashes), or one of the special subtrees \`_claim\` and \`_ops\`, which no device id can equal. Every payload is UTF-8 JSON with a schema version \`v\`. MQTT 3.1.1 is enough for all of it.`,
    '',
    '## Identities and access',
    '',
    '| identity | MQTT username | password | may publish | may subscribe |',
    '|---|---|---|---|---|',
    '| a box | `<deviceId>` | issued at provisioning | its own box->fleet topics | its own fleet->box topics |',
    '| a new box | `claim:<SERIAL>` | the claim secret on the label | `_claim/<SERIAL>/req` | `_claim/<SERIAL>/res` |',
    '| ops user | `ops:<user>` | set by an admin | `_ops/<user>/req` | `_ops/<user>/res` |',
    '| the fleet | `fleet:<name>` | internal | everything | everything |',
    '',
    'Wildcard subscriptions and `$SYS` are refused to everyone but the fleet. The broker enforces this table (shared/contract/topics.ts `mayPublish`/`maySubscribe`).',
    '',
    '## Topics',
    '',
    '| topic | direction | QoS | retained | message | meaning |',
    '|---|---|---|---|---|---|',
  ];
  for (const t of TOPICS) {
    out.push(
      `| \`${t.pattern}\` | ${t.direction} | ${t.qos} | ${t.retained ? 'yes' : 'no'} | ${t.message} | ${t.description} |`,
    );
  }
  out.push(
    '',
    '## Request and response',
    '',
    'Every `…/req` topic is answered on the paired `…/res` topic. The request carries an `id` (UUIDv7); the answer carries the same `id` and either `ok: true` with a `result` or `ok: false` with an `error` (`code` from shared/errors.ts, grouped by area: 1xx configuration, 2xx validation, 3xx modem, 4xx storage, 5xx link, 6xx fleet, 7xx io, 8xx audio, 9xx internal). A responder answers a repeated `id` with its first answer, so a requester may retry safely. The requester gives up after `timeoutMs` with error 203 RequestTimeout. A version 2 request carries `expiresAt`: a responder that gets it later (by its own clock) does not run it and answers error 207 RequestExpired with `details` `{ method, sentAt, expiresAt, responderTime }`, so a command queued for an offline box does not run when the box comes back hours later. By default a command expires when its requester stops waiting; `panic.ack` lives an hour (showing a person acknowledged is still right later). Version 1 requests (older requesters) never expire; a responder older than version 2 refuses version 2 requests on `v`, so update the boxes before the fleet.',
    '',
  );
  for (const m of MESSAGE_EXAMPLES) {
    out.push(`## ${m.name}`, '', fieldTable(m.schema), '', 'Example:', '', json(m.example), '');
  }
  out.push(
    '## Delivery: batches and receipts',
    '',
    "A box forgets an event only when the fleet says it has stored it. The broker's PUBACK is transport, not proof (a broker or a fleet can die holding a message in memory).",
    '',
    "1. The box publishes its outbox on `callbox/v1/<deviceId>/events` as `EventBatch` messages (QoS 1): consecutive outbox events in `seq` order, one or many per message (up to `outbox.publishBatch` events and `outbox.batchMaxBytes` bytes), at most `outbox.batchesInFlight` messages without a receipt. `stream` names the box's outbox (a store set aside as corrupt starts a new one, whose `seq` starts again at 1); `floor`: the box holds no event of the stream at or below it (receipted, or a state event superseded by a newer one); `after`: the message carries every event the box holds with `after < seq <= ` the last `seq` in it.",
    "2. The fleet validates the batch (a bad header rejects the whole message, which the box will send again; a bad event inside is rejected alone, reported, and receipted past so that it cannot block the outbox), stores its events once by `id`, and only after the commit acknowledges the message to the broker (PUBACK) and publishes a `Receipt` on `callbox/v1/<deviceId>/events/receipt` (QoS 1): every event of `stream` with `seq <= receipt.seq` is stored. The receipt is cumulative per box and stream: it starts at the batch's `floor`, moves to a batch's last `seq` when the batch joins on (`after` <= the receipt so far), and batches ahead of a missing one join when it arrives. Duplicates are receipted too.",
    '3. The box deletes its events up to `receipt.seq` (receipts naming another stream are ignored). Events without a receipt are sent again, from the oldest, at every reconnect and when no receipt came for `outbox.receiptTimeoutMs` (the wait doubling up to `outbox.receiptTimeoutMaxMs` while the fleet stays silent).',
    '',
    'A single `Event` (the form older boxes publish) is still accepted and stored the same way, without a receipt.',
    '',
    '## Events',
    '',
    'Every event travels in this envelope, inside an `EventBatch` on `callbox/v1/<deviceId>/events` (QoS 1). `id` is a UUIDv7 (unique, sorts by time); `seq` increases by one per event per box and survives reboots, so the fleet can see gaps; `at` is when the thing happened. The box commits an event to its outbox before publishing it; the fleet stores each `id` once.',
    '',
    envelopeTable(),
    '',
  );
  for (const type of EVENT_TYPES) {
    out.push(
      `### \`${type}\``,
      '',
      fieldTable(EVENT_BODIES[type]),
      '',
      json(type === 'call.incoming' ? eventExample(type) : EVENT_EXAMPLES[type]),
      '',
    );
  }
  out.push('## Methods', '');
  out.push(...methods('Commands to a box', DEVICE_COMMANDS, 'callbox/v1/<deviceId>/cmd/req'));
  out.push(...methods('Requests from a box to the fleet', FLEET_REQUESTS, 'callbox/v1/<deviceId>/fleet/req'));
  for (const extra of extraMethodTables) out.push(...methods(extra.title, extra.table, extra.topic, extra.intro));
  return `${out.join('\n').trimEnd()}\n`;
}

export async function loadExtraTables(): Promise<
  { title: string; table: MethodTable; topic: string; intro?: string }[]
> {
  const { OPS_METHODS } = await import('../shared/contract/ops.js');
  return [
    {
      title: 'Ops requests to the fleet',
      table: OPS_METHODS as unknown as MethodTable,
      topic: 'callbox/v1/_ops/<user>/req',
      intro:
        'The same methods are served over HTTP by the fleet web server (fleet/web): `GET /api/v1/<method>?<params>` ' +
        'for those of the viewer role, `POST /api/v1/<method>` with a JSON body for the others, as the user of the ' +
        'sign-in session; the OpenAPI document is at `/api/openapi.json`. Roles: viewer < operator < admin; a clinic ' +
        'user (role clinic) is bound to one clinic and may call only the methods that name a clinic scope below ' +
        '(none: no clinic data; clinicId: params.clinicId is its clinic, set when absent; box: params.box is a box ' +
        'of its clinic; alert, voicemail: the one named is of its clinic; clinics: the answer lists its clinic only).',
    },
  ];
}

export function protocolDocIsCurrent(text: string): boolean {
  return readFileSync(PROTOCOL_DOC_PATH, 'utf8') === text;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = renderProtocolDoc(await loadExtraTables());
  if (process.argv.includes('--write')) {
    writeFileSync(PROTOCOL_DOC_PATH, text);
    process.stdout.write(`wrote ${PROTOCOL_DOC_PATH}\n`);
  } else {
    process.stdout.write(text);
  }
}
