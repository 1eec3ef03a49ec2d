/**
 * device/calls as a feature module of the box (device/box.ts):
 *
 *   const calls = callsModule({ modem, onVoicemail: (c) => recorder.record(c) });
 *   box.use(modemModule).use(calls);   // calls.manager: answer(), hangUp(), snapshot(), 'change'
 *
 * At start it keeps its call records in the box store (CALLS_MIGRATIONS,
 * module "calls"), records events through box.events (the outbox), answers
 * the fleet's forwarding.set / forwarding.query, and follows the settings:
 * a change is checked first (clinic hours that make no sense are refused,
 * naming the field) and then put in force (hours and timeouts at once; a
 * new rollover section re-registers network forwarding).
 */

import { checkHours } from '../../shared/clinic-hours.js';
import type { DEVICE_COMMANDS, ParamsOf, ResultOf } from '../../shared/contract/rpc.js';
import type { DeviceSettings } from '../../shared/contract/settings.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { RequestContext } from '../../shared/rpc.js';
import type { EventSink } from '../events.js';
import type { Modem } from '../modem/types.js';
import type { Clock } from './clock.js';
import { CallManager, type VoicemailCall } from './manager.js';
import { CALLS_MIGRATIONS, SqliteCallStore, type SqlQueries } from './store.js';

type Method = 'forwarding.set' | 'forwarding.query';

/** What the calls module uses of the Box (the Box provides all of it). */
export interface CallsHost {
  readonly store: SqlQueries;
  readonly events: EventSink;
  readonly settings: DeviceSettings;
  handle<M extends Method>(
    method: M,
    handler: (
      params: ParamsOf<typeof DEVICE_COMMANDS, M>,
      ctx: RequestContext,
    ) => Promise<ResultOf<typeof DEVICE_COMMANDS, M>> | ResultOf<typeof DEVICE_COMMANDS, M>,
  ): () => void;
  onSettings(listener: {
    name: string;
    check?(next: DeviceSettings, prev: DeviceSettings): void | Promise<void>;
    apply(next: DeviceSettings, prev: DeviceSettings): void | Promise<void>;
  }): Promise<() => void>;
}

export interface CallsModuleOptions {
  modem: Modem;
  onVoicemail?: (call: VoicemailCall) => void;
  clock?: Clock;
  log?: Logger;
}

export interface CallsModule {
  name: 'calls';
  migrations: typeof CALLS_MIGRATIONS;
  /** The running CallManager (after start). */
  readonly manager: CallManager;
  start(host: CallsHost): Promise<void>;
  stop(): Promise<void>;
}

/** Refuse settings whose clinic hours cannot be meant (the schema cannot see these). */
export function checkCallSettings(next: DeviceSettings): void {
  const problems = checkHours(next.hours);
  if (problems.length > 0)
    throw new CallboxError(
      ErrorCode.ValidationFailed,
      `settings refused by calls: ${problems.map((p) => `${p.path}: got ${p.value}, expected ${p.expected}`).join('; ')}`,
      { problems },
    );
}

export function callsModule(opts: CallsModuleOptions): CallsModule {
  let manager: CallManager | undefined;
  const undo: (() => void)[] = [];
  return {
    name: 'calls',
    migrations: CALLS_MIGRATIONS,
    get manager(): CallManager {
      if (!manager) throw new CallboxError(ErrorCode.Internal, 'calls module used before start');
      return manager;
    },
    async start(host: CallsHost): Promise<void> {
      let current = host.settings;
      const mgr = new CallManager({
        modem: opts.modem,
        sink: host.events,
        settings: () => current,
        store: new SqliteCallStore(host.store),
        ...(opts.onVoicemail ? { onVoicemail: opts.onVoicemail } : {}),
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      manager = mgr;
      undo.push(host.handle('forwarding.set', (p) => mgr.setForwarding(p)));
      undo.push(host.handle('forwarding.query', () => mgr.queryForwarding()));
      undo.push(
        await host.onSettings({
          name: 'calls',
          check: (next) => checkCallSettings(next),
          apply: (next) => {
            current = next;
            mgr.applySettings();
          },
        }),
      );
      await mgr.start();
    },
    async stop(): Promise<void> {
      while (undo.length) undo.pop()?.();
      await manager?.stop();
    },
  };
}
