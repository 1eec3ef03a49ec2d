/**
 * The `fleet` CLI: ops work on the fleet over its MQTT ops API (the same
 * requests any tool can send). Output is a short table or text, or JSON with
 * --json. Errors say what to do; exit codes:
 *   0 done   2 usage (bad arguments, unreadable file)   3 not found
 *   4 not authorised   5 cannot reach the fleet or no answer in time
 *   6 refused (invalid input, conflict)   1 anything else
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { parse as parseYaml } from 'yaml';
import { describeError, ErrorCode, isCallboxError } from '../shared/errors.js';
import { loadFleetConfig } from './config.js';
import { CONNECTION_FILE, type FleetConnection, readConnectionFile } from './connection-file.js';
import { addFiguresCommands } from './figures/cli.js';
import { OpsClient } from './ops-client.js';
import { addPatientCommands } from './patients/cli.js';
import { addReleaseCommands } from './release-cli.js';
import { addTriageCommands } from './triage/cli.js';
import { addRolloutCommands } from './updates/cli.js';

class UsageError extends Error {}

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return 2;
  if (!isCallboxError(e)) return 1;
  switch (e.code) {
    case ErrorCode.NotFound:
    case ErrorCode.AlertNotFound:
      return 3;
    case ErrorCode.NotAuthorized:
      return 4;
    case ErrorCode.LinkDisconnected:
    case ErrorCode.RequestTimeout:
      return 5;
    case ErrorCode.ValidationFailed:
    case ErrorCode.Conflict:
    case ErrorCode.UpdateRefused:
    case ErrorCode.UnknownMethod:
    case ErrorCode.ClaimPending:
    case ErrorCode.DeviceDecommissioned:
    case ErrorCode.RequestExpired:
    case ErrorCode.DeviceOffline:
      return 6;
    default:
      return 1;
  }
}

function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (v: unknown) =>
    v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

function readData(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

function parseJsonArg(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** How long a fleet has to answer the CLI's first request (fleet.hello) before the CLI says it is not one. */
const HELLO_MS = Number(process.env.CALLBOX_OPS_HELLO_MS ?? 1000);

interface Target {
  url: string;
  user: string;
  passwordFile: string;
  /** Where the password file name came from, for the error message. */
  passwordFrom: string;
}

/**
 * Where the fleet is and who to be: flags, then CALLBOX_OPS_* variables, then the connection.json the fleet wrote in
 * its data folder (--data-dir, CALLBOX_FLEET__DATA__DIR, ./var), then the defaults.
 */
export function resolveTarget(
  o: { url?: string; user?: string; passwordFile?: string; dataDir?: string },
  env: NodeJS.ProcessEnv,
): Target {
  const dataDir = o.dataDir ?? env.CALLBOX_FLEET__DATA__DIR ?? 'var';
  let conn: FleetConnection | undefined;
  try {
    conn = readConnectionFile(dataDir);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const explicitUrl = o.url ?? env.CALLBOX_OPS_URL;
  // connection.json speaks for its own URL only.
  const c = conn && (explicitUrl === undefined || explicitUrl === conn.url) ? conn : undefined;
  const url = explicitUrl ?? c?.url ?? 'mqtt://127.0.0.1:1883';
  const user = o.user ?? env.CALLBOX_OPS_USER ?? c?.user ?? 'admin';
  const [passwordFile, passwordFrom] = o.passwordFile
    ? [o.passwordFile, '--password-file']
    : env.CALLBOX_OPS_PASSWORD_FILE
      ? [env.CALLBOX_OPS_PASSWORD_FILE, 'CALLBOX_OPS_PASSWORD_FILE']
      : c && user === c.user
        ? [c.passwordFile, `named by ${join(dataDir, CONNECTION_FILE)}`]
        : [join(dataDir, 'fleet-admin.secret'), 'the default'];
  return { url, user, passwordFile, passwordFrom };
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = new Command('fleet');
  let code = 0;
  let client: OpsClient | undefined;
  program
    .description('Callbox fleet operations: boxes, claims, clinics, configuration, commands, events')
    .option(
      '--url <url>',
      'the fleet broker (default: CALLBOX_OPS_URL, else the connection.json the fleet wrote in its data folder)',
    )
    .option('--user <name>', 'ops user (default: CALLBOX_OPS_USER, else connection.json, else admin)')
    .option(
      '--password-file <file>',
      "file holding the ops password (default: CALLBOX_OPS_PASSWORD_FILE, else connection.json's, else <data dir>/fleet-admin.secret)",
    )
    .option(
      '--data-dir <dir>',
      "the fleet's data folder, where it writes connection.json (default: CALLBOX_FLEET__DATA__DIR, else ./var)",
    )
    .option('--ca <file>', 'CA certificate (PEM) to trust for an mqtts:// URL')
    .option('--json', 'print JSON')
    .option('--timeout <ms>', 'wait this long for an answer', '20000')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  const connect = async (): Promise<OpsClient> => {
    const o = program.opts<{
      url?: string;
      user?: string;
      passwordFile?: string;
      dataDir?: string;
      timeout: string;
      ca?: string;
    }>();
    let ca: string | undefined;
    if (o.ca) {
      try {
        ca = readFileSync(o.ca, 'utf8');
      } catch (e) {
        throw new UsageError(`cannot read the CA file ${o.ca}: ${(e as Error).message}`);
      }
    }
    const target = resolveTarget(o, io.env);
    let password = io.env.CALLBOX_OPS_PASSWORD;
    if (!password) {
      try {
        password = readFileSync(target.passwordFile, 'utf8').trim();
      } catch {
        throw new UsageError(
          `no password for ops:${target.user}: ${target.passwordFile} cannot be read (${target.passwordFrom}); ` +
            'set --password-file or CALLBOX_OPS_PASSWORD, or start the fleet once to create it',
        );
      }
    }
    client = await OpsClient.connect(target.url, target.user, password, {
      timeoutMs: Number(o.timeout),
      ...(ca ? { mqtt: { ca } } : {}),
    });
    await client.hello(target.url, Math.min(HELLO_MS, Number(o.timeout)));
    return client;
  };
  const json = () => Boolean(program.opts().json);
  const print = (value: unknown, human: () => string) =>
    io.out(`${json() ? JSON.stringify(value, null, 2) : human()}\n`);
  const BOX_COLS = [
    'serial',
    'deviceId',
    'claimState',
    'clinicId',
    'online',
    'lastSeenAt',
    'firmware',
    'desiredVersion',
    'reportedVersion',
  ];

  const boxes = program.command('boxes').description('call boxes');
  boxes
    .command('list')
    .option('--clinic <id>', 'of one clinic')
    .option('--state <state>', 'registered, pending, approved, rejected or decommissioned')
    .option('--limit <n>', 'at most (a page; up to 1000)', '100')
    .option('--after <serial>', 'the page after this serial (the last of the page before)')
    .action(async (o: { clinic?: string; state?: string; limit: string; after?: string }) => {
      const c = await connect();
      const r = await c.call('boxes.list', {
        ...(o.clinic ? { clinicId: o.clinic } : {}),
        ...(o.state ? { claimState: o.state as never } : {}),
        ...(o.after ? { after: o.after } : {}),
        limit: Number(o.limit),
      });
      print(r, () => table(r, BOX_COLS));
    });
  boxes
    .command('show <box>')
    .description('one box (serial or device id)')
    .action(async (box: string) => {
      const r = await (await connect()).call('boxes.show', { box });
      print(r, () =>
        [
          ...Object.entries(r.box).map(([k, v]) => `${k.padEnd(20)} ${v ?? '-'}`),
          `${'desired config'.padEnd(20)} ${r.desired ? `v${r.desired.version} by ${r.desired.createdBy}` : '-'}`,
          `${'events stored'.padEnd(20)} ${r.eventCount}`,
          `${'sequence gaps'.padEnd(20)} ${r.gaps.length ? r.gaps.map((g) => `${g.fromSeq}-${g.toSeq}`).join(', ') : 'none'}`,
        ].join('\n'),
      );
    });
  boxes
    .command('register <serial>')
    .description('register a serial in advance: its claim is approved automatically')
    .option('--secret <secret>', 'the claim secret from the label (only it may claim)')
    .option('--clinic <id>', 'assign to a clinic')
    .action(async (serial: string, o: { secret?: string; clinic?: string }) => {
      const r = await (await connect()).call('boxes.register', {
        serial,
        ...(o.secret ? { claimSecret: o.secret } : {}),
        ...(o.clinic ? { clinicId: o.clinic } : {}),
      });
      print(r, () => `registered ${r.serial}`);
    });
  boxes
    .command('assign <box> <clinic>')
    .description('assign a box to a clinic ("none" to unassign)')
    .action(async (box: string, clinic: string) => {
      const r = await (await connect()).call('boxes.assign', { box, clinicId: clinic === 'none' ? null : clinic });
      print(r, () => `${r.serial} assigned to ${r.clinicId ?? 'no clinic'}`);
    });
  const config = boxes.command('config').description('desired configuration');
  config
    .command('set <box> <file>')
    .description('set the box settings from a YAML or JSON file (validated; a new version, published retained)')
    .action(async (box: string, file: string) => {
      const settings = readData(file);
      const r = await (await connect()).call('boxes.setConfig', { box, settings });
      print(r, () => `${r.deviceId}: configuration version ${r.version} published`);
    });
  config
    .command('get <box>')
    .option('--version <n>', 'a given version')
    .action(async (box: string, o: { version?: string }) => {
      const r = await (await connect()).call('boxes.getConfig', {
        box,
        ...(o.version ? { version: Number(o.version) } : {}),
      });
      print(r, () => (r ? JSON.stringify(r, null, 2) : 'no configuration set'));
    });
  boxes
    .command('rotate <box>')
    .description('revoke the box credentials; it claims again and gets new ones')
    .action(async (box: string) => {
      const r = await (await connect()).call('boxes.rotateCredentials', { box });
      print(r, () => `${r.serial}: credentials revoked; the box will claim new ones`);
    });
  boxes
    .command('decommission <box>')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .action(async (box: string, o: { reason: string }) => {
      const r = await (await connect()).call('boxes.decommission', { box, reason: o.reason });
      print(r, () => `${r.serial} decommissioned`);
    });
  boxes
    .command('command <box> <method>')
    .description(
      'send a command (forwarding.set, forwarding.query, sms.send, panic.ack, indicators.test, reboot, diagnostics.collect)',
    )
    .option('--params <json>', 'parameters as JSON', '{}')
    .option('--params-file <file>', 'parameters from a YAML or JSON file')
    .option('--wait <ms>', 'how long the box may take', '15000')
    .option('--expires <s>', 'the box refuses the command if it gets it later than this (default: the wait)')
    .action(
      async (
        box: string,
        method: string,
        o: { params: string; paramsFile?: string; wait: string; expires?: string },
      ) => {
        const params = o.paramsFile ? readData(o.paramsFile) : parseJsonArg('--params', o.params);
        const r = await (await connect()).call(
          'boxes.command',
          {
            box,
            method,
            params,
            timeoutMs: Number(o.wait),
            ...(o.expires === undefined ? {} : { expiresInMs: Math.round(Number(o.expires) * 1000) }),
          },
          { timeoutMs: Number(o.wait) + 5000 },
        );
        const queued = r as { queued?: boolean; message?: string };
        print(r, () => (queued?.queued && queued.message ? queued.message : JSON.stringify(r, null, 2)));
      },
    );

  const claims = program.command('claims').description('boxes asking to join');
  claims
    .command('list')
    .option('--limit <n>', 'at most (a page; up to 1000)', '100')
    .option('--after <serial>', 'the page after this serial (the last of the page before)')
    .action(async (o: { limit: string; after?: string }) => {
      const r = await (await connect()).call('claims.list', {
        limit: Number(o.limit),
        ...(o.after ? { after: o.after } : {}),
      });
      print(r, () => table(r, ['serial', 'model', 'firmware', 'createdAt']));
    });
  claims
    .command('approve <serial>')
    .option('--clinic <id>', 'assign to a clinic')
    .action(async (serial: string, o: { clinic?: string }) => {
      const r = await (await connect()).call('claims.approve', { serial, ...(o.clinic ? { clinicId: o.clinic } : {}) });
      print(r, () => `${r.serial} approved as ${r.deviceId}`);
    });
  claims
    .command('reject <serial>')
    .requiredOption('--reason <text>', 'why')
    .action(async (serial: string, o: { reason: string }) => {
      const r = await (await connect()).call('claims.reject', { serial, reason: o.reason });
      print(r, () => `${r.serial} rejected`);
    });

  const clinics = program.command('clinics').description('clinics');
  clinics.command('list').action(async () => {
    const r = await (await connect()).call('clinics.list', {});
    print(r, () => table(r, ['id', 'name', 'timezone', 'phoneNumbers', 'answeringService']));
  });
  clinics.command('show <id>').action(async (clinicId: string) => {
    const r = await (await connect()).call('clinics.show', { clinicId });
    print(r, () => `${JSON.stringify(r.clinic, null, 2)}\nboxes:\n${table(r.boxes, BOX_COLS)}`);
  });
  const collect = (v: string, prev: string[]) => [...prev, v];
  clinics
    .command('create')
    .requiredOption('--name <name>')
    .requiredOption('--timezone <tz>', 'IANA zone, e.g. America/New_York')
    .option('--phone <e164>', 'a clinic line (repeat)', collect, [])
    .option('--answering-service <e164>', 'rollover number')
    .option('--contact <json>', 'a contact as JSON {"name","phone","email","role"} (repeat)', collect, [])
    .option('--org <id>', 'organisation')
    .action(
      async (o: {
        name: string;
        timezone: string;
        phone: string[];
        answeringService?: string;
        contact: string[];
        org?: string;
      }) => {
        const r = await (await connect()).call('clinics.create', {
          name: o.name,
          timezone: o.timezone,
          phoneNumbers: o.phone,
          answeringService: o.answeringService ?? null,
          contacts: o.contact.map((c, i) => parseJsonArg(`--contact #${i + 1}`, c)) as never,
          ...(o.org ? { organisationId: o.org } : {}),
        });
        print(r, () => `clinic ${r.id} created`);
      },
    );
  clinics
    .command('update <id>')
    .option('--name <name>')
    .option('--timezone <tz>')
    .option('--phone <e164>', 'replaces the lines (repeat)', collect, [])
    .option('--answering-service <e164>', 'rollover number ("none" to clear)')
    .action(
      async (clinicId: string, o: { name?: string; timezone?: string; phone: string[]; answeringService?: string }) => {
        const r = await (await connect()).call('clinics.update', {
          clinicId,
          ...(o.name ? { name: o.name } : {}),
          ...(o.timezone ? { timezone: o.timezone } : {}),
          ...(o.phone.length ? { phoneNumbers: o.phone } : {}),
          ...(o.answeringService
            ? { answeringService: o.answeringService === 'none' ? null : o.answeringService }
            : {}),
        });
        print(r, () => `clinic ${r.id} updated`);
      },
    );

  clinics
    .command('set-defaults <id> <file>')
    .description(
      'the settings every box of the clinic starts from (YAML or JSON, a part of the box settings: hours, calls, ...); a box\'s own settings override them field by field; file "none" clears them',
    )
    .action(async (clinicId: string, file: string) => {
      const defaults = file === 'none' ? null : readData(file);
      if (defaults !== null && (typeof defaults !== 'object' || Array.isArray(defaults))) {
        throw new UsageError(`${file} must hold an object of box settings (e.g. hours:, calls:)`);
      }
      const r = await (await connect()).call('clinics.setDefaults', {
        clinicId,
        defaults: defaults as Record<string, unknown> | null,
      });
      print(r, () => `clinic ${r.clinic.id}: box defaults set; ${r.boxesUpdated} box(es) got new settings`);
    });

  // ---- alerts and rollover (fleet/alerts) ----
  const alertRef = (ref: string) => (/^\d{4}$/.test(ref) ? { code: ref } : { id: ref });
  const ALERT_COLS = ['shortCode', 'state', 'severity', 'condition', 'occurrences', 'firstAt', 'ackedBy', 'text'];
  const alerts = program.command('alerts').description('alerts: list, show, acknowledge, resolve');
  alerts
    .command('list')
    .option('--clinic <id>', 'of one clinic')
    .option('--state <state>', 'active (default), open, acknowledged, resolved', 'active')
    .option('--limit <n>', 'at most', '50')
    .action(async (o: { clinic?: string; state: string; limit: string }) => {
      const r = (await (
        await connect()
      ).call('alerts.list', {
        ...(o.clinic ? { clinicId: o.clinic } : {}),
        state: o.state as never,
        limit: Number(o.limit),
      })) as Record<string, unknown>[];
      print(r, () => table(r, ALERT_COLS));
    });
  alerts.command('show <alert>').action(async (ref: string) => {
    const r = (await (await connect()).call('alerts.show', alertRef(ref))) as {
      alert: Record<string, unknown>;
      deliveries: Record<string, unknown>[];
      log: Record<string, unknown>[];
    };
    print(r, () =>
      [
        JSON.stringify(r.alert, null, 2),
        'deliveries:',
        table(r.deliveries, ['at', 'step', 'channel', 'target', 'attempt', 'status', 'error', 'detail']),
        'history:',
        table(r.log, ['at', 'action', 'by', 'detail']),
      ].join('\n'),
    );
  });
  alerts
    .command('ack <alert>')
    .description('acknowledge (by id or 4-digit code)')
    .action(async (ref: string) => {
      const r = (await (await connect()).call('alerts.ack', alertRef(ref))) as Record<string, unknown>;
      print(r, () => `alert ${r.shortCode} is ${r.state} (by ${r.ackedBy ?? '-'})`);
    });
  alerts
    .command('resolve <alert>')
    .description('resolve (by id or 4-digit code)')
    .option('--note <text>', 'why')
    .action(async (ref: string, o: { note?: string }) => {
      const r = (await (
        await connect()
      ).call('alerts.resolve', {
        ...alertRef(ref),
        ...(o.note ? { note: o.note } : {}),
      })) as Record<string, unknown>;
      print(r, () => `alert ${r.shortCode} is ${r.state} (by ${r.resolvedBy ?? '-'})`);
    });
  const alertSettings = alerts.command('settings').description("a clinic's alert settings (escalation, channels)");
  alertSettings.command('get <clinic>').action(async (clinicId: string) => {
    const r = await (await connect()).call('alerts.settings.get', { clinicId });
    print(r, () => JSON.stringify(r, null, 2));
  });
  alertSettings
    .command('set <clinic> <file>')
    .description('replace them from a YAML or JSON file (validated whole; bad input changes nothing)')
    .action(async (clinicId: string, file: string) => {
      const r = await (await connect()).call('alerts.settings.set', { clinicId, settings: readData(file) });
      print(r, () => `alert settings of clinic ${clinicId} replaced`);
    });
  alerts
    .command('silence <clinic>')
    .description("silence a clinic's alerts for a maintenance window (panic is never silenced unless listed)")
    .requiredOption('--until <time>', 'end of the window (ISO time)')
    .option('--from <time>', 'start of the window (ISO time; default now)')
    .option('--condition <c>', 'only this condition (repeat; default: all but panic)', collect, [])
    .option('--reason <text>', 'why')
    .action(async (clinicId: string, o: { until: string; from?: string; condition: string[]; reason?: string }) => {
      const r = await (await connect()).call('alerts.silence', {
        clinicId,
        from: o.from ?? new Date().toISOString(),
        until: o.until,
        ...(o.condition.length ? { conditions: o.condition as never } : {}),
        ...(o.reason ? { reason: o.reason } : {}),
      });
      print(r, () => `alerts of clinic ${clinicId} silenced until ${o.until}`);
    });
  const rollover = program.command('rollover').description("a clinic's calls to its answering service and back");
  rollover.command('status <clinic>').action(async (clinicId: string) => {
    const r = await (await connect()).call('rollover.status', { clinicId });
    print(r, () => (r ? JSON.stringify(r, null, 2) : 'no rollover: calls ring at the clinic'));
  });
  rollover
    .command('start <clinic>')
    .requiredOption('--reason <text>', 'why (it goes into the alert text)')
    .option('--number <e164>', 'forward to (default: the clinic answering service)')
    .option('--until <time>', 'roll back at this time (ISO)')
    .action(async (clinicId: string, o: { reason: string; number?: string; until?: string }) => {
      const r = (await (
        await connect()
      ).call('rollover.start', {
        clinicId,
        reason: o.reason,
        ...(o.number ? { number: o.number } : {}),
        ...(o.until ? { backAt: o.until } : {}),
      })) as { active: boolean; boxes: { deviceId: string; confirmed: boolean; error?: string }[] };
      print(r, () =>
        [
          r.active ? 'rollover on' : 'rollover NOT on: no box confirmed it',
          ...r.boxes.map((b) => `  ${b.deviceId}: ${b.confirmed ? 'confirmed' : `not confirmed (${b.error ?? '?'})`}`),
        ].join('\n'),
      );
      if (!r.active) code = 6;
    });
  rollover.command('stop <clinic>').action(async (clinicId: string) => {
    const r = (await (await connect()).call('rollover.stop', { clinicId })) as { active: boolean };
    print(r, () => (r.active ? 'rollover still on' : 'rollover off: calls are back at the clinic'));
  });

  program
    .command('voicemail')
    .description('voicemail')
    .command('heard <id>')
    .description('a voicemail was listened to (no unheard-voicemail alert for it)')
    .action(async (voicemailId: string) => {
      const r = await (await connect()).call('voicemail.heard', { voicemailId });
      print(r, () => `voicemail ${voicemailId} marked heard`);
    });
  const orgs = program.command('orgs').description('organisations (groups of clinics)');
  orgs.command('list').action(async () => {
    const r = await (await connect()).call('orgs.list', {});
    print(r, () => table(r as Record<string, unknown>[], ['id', 'name', 'createdAt']));
  });
  orgs.command('create <name>').action(async (name: string) => {
    const r = (await (await connect()).call('orgs.create', { name })) as { id: string };
    print(r, () => `organisation ${r.id} created`);
  });
  program
    .command('ping')
    .description('check that a Callbox fleet answers (fleet.hello) and who you are to it')
    .action(async () => {
      const c = await connect();
      const r = await c.call('fleet.hello', {});
      print(r, () => `${r.service} ${r.version} answers; you are ${r.user}`);
    });
  program
    .command('events')
    .description('stored events, newest first')
    .option('--box <box>', 'of one box')
    .option('--type <type>', 'of one type, e.g. call.ended')
    .option('--since <time>', 'stored at or after (ISO time)')
    .option('--limit <n>', 'at most (a page; up to 1000)', '50')
    .option('--before <id>', 'the page before this event id (the last of the page before)')
    .action(async (o: { box?: string; type?: string; since?: string; limit: string; before?: string }) => {
      const r = await (await connect()).call('events.list', {
        ...(o.box ? { box: o.box } : {}),
        ...(o.type ? { type: o.type as never } : {}),
        ...(o.since ? { since: o.since } : {}),
        ...(o.before ? { before: o.before } : {}),
        limit: Number(o.limit),
      });
      print(r, () => table(r, ['receivedAt', 'deviceId', 'seq', 'type', 'id']));
    });
  program
    .command('audit')
    .description('who changed what, newest first')
    .option('--target <t>', 'e.g. box:CB-0001 or clinic:<id>')
    .option('--limit <n>', 'at most', '50')
    .action(async (o: { target?: string; limit: string }) => {
      const r = await (await connect()).call('audit.list', {
        ...(o.target ? { target: o.target } : {}),
        limit: Number(o.limit),
      });
      print(r, () => table(r, ['at', 'actor', 'action', 'target']));
    });
  program
    .command('users')
    .description('ops users')
    .command('create <name>')
    .requiredOption('--role <role>', 'viewer, operator, admin or clinic (a clinic manager: give --clinic)')
    .option('--clinic <clinic>', 'role clinic: the clinic it manages, by id or name')
    .action(async (name: string, o: { role: string; clinic?: string }) => {
      const r = await (await connect()).call('users.create', {
        name,
        role: o.role as never,
        ...(o.clinic ? { clinic: o.clinic } : {}),
      });
      const of = r.clinicId ? ` of clinic ${r.clinicId}` : '';
      print(r, () => `created ${r.username} (${r.role}${of}); password (shown once): ${r.password}`);
    });
  program
    .command('mosquitto-config')
    .description('write Mosquitto configuration (dynamic security) equal to the embedded broker rules, from the store')
    .requiredOption('--out <dir>', 'folder for mosquitto.conf, dynamic-security.json and fleet.secret')
    .option('--config <file>', 'fleet configuration file (store location); or --data-dir DIR')
    .option('--port <n>', 'Mosquitto listener port', '1883')
    .option(
      '--fleet-worker <name...>',
      'one more login fleet:<name> with its secret file fleet-<name>.secret per fleet worker (several fleet processes: docs/CLUSTER.md)',
    )
    .action(async (o: { out: string; config?: string; port: string; fleetWorker?: string[] }) => {
      const { openStore } = await import('./store/index.js');
      const { generateMosquittoConfig } = await import('./mosquitto.js');
      const dataDir = program.opts<{ dataDir?: string }>().dataDir;
      const file = o.config ?? io.env.CALLBOX_FLEET_CONFIG;
      if (!file && !dataDir && !io.env.CALLBOX_FLEET__DATA__DIR) {
        throw new UsageError(
          "mosquitto-config reads the fleet's store: give the fleet's configuration (--config FILE) or its data " +
            'folder (--data-dir DIR or CALLBOX_FLEET__DATA__DIR)',
        );
      }
      const cfg = loadFleetConfig(file, dataDir ? { data: { dir: dataDir } } : undefined, io.env);
      if (cfg.store.kind === 'sqlite' && !existsSync(cfg.store.sqlitePath)) {
        throw new UsageError(
          `no fleet store at ${cfg.store.sqlitePath} (nothing created): start the fleet once with this ` +
            'configuration, or point --config/--data-dir at the fleet that runs',
        );
      }
      const store = await openStore(cfg.store);
      try {
        const g = await generateMosquittoConfig(store, {
          dir: o.out,
          port: Number(o.port),
          maxPacketBytes: cfg.mqtt.maxPayloadBytes + 1024,
          fleetUsername: cfg.mqtt.externalUsername,
          fleetWorkers: o.fleetWorker ?? [],
          maxQueuedMessages: cfg.mqtt.externalMaxQueuedMessages,
          maxQueuedBytes: cfg.mqtt.externalMaxQueuedBytes,
        });
        print(g, () =>
          [
            `wrote ${g.confFile} (${g.clients} clients) and ${g.fleetSecretFile}`,
            ...g.workers.map((w) => `worker login ${w.username}: secret in ${w.secretFile}`),
            `run: mosquitto -c ${g.confFile}`,
            `then: CALLBOX_FLEET__MQTT__MODE=external CALLBOX_FLEET__MQTT__EXTERNAL_URL=mqtt://127.0.0.1:${o.port} CALLBOX_FLEET__MQTT__EXTERNAL_PASSWORD_FILE=${g.fleetSecretFile} npm start`,
          ].join('\n'),
        );
      } finally {
        await store.close();
      }
    });

  addRolloutCommands(addReleaseCommands(program, io.out, json), connect, print);
  addPatientCommands(program, connect, print, table);
  addTriageCommands(program, connect, print);
  addFiguresCommands(program, connect, print, io.out);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      code = e.exitCode === 0 ? 0 : 2;
    } else {
      code = exitCodeOf(e);
      const msg = describeError(e);
      // One hint, never two: messages that carry their own (OpsClient's) get none here.
      const hint = /\(.*(check|is the fleet)[^)]*\)\s*$/.test(msg)
        ? ''
        : code === 5
          ? ' (is the fleet running? check --url; a box command waits --wait ms)'
          : code === 4
            ? ' (check --user and the password; an admin can grant roles)'
            : '';
      io.err(`fleet: ${msg}${hint}\n`);
    }
  } finally {
    await client?.close();
  }
  return code;
}
