/**
 * The alert engine as one fleet feature: open its store in the fleet
 * store's database (on its connection), build the channels and the link signer, start the engine on the
 * fleet bus. The composition root calls startAlerts() after the fleet is up
 * and stop() before it stops; it registers `http.plugin` (with
 * `http.options`) on its fastify server and merges ALERT_OPS_METHODS /
 * alertOpsHandlers() into its ops responder.
 */
import { getLogger } from '../../shared/log.js';
import type { FleetBus, FleetBusEvents } from '../bus.js';
import { EmailChannel } from '../channels/email.js';
import { SmsChannel } from '../channels/sms.js';
import { WebhookChannel } from '../channels/webhook.js';
import type { BoxCommands } from '../commands.js';
import type { FleetConfig } from '../config.js';
import { SqlStore } from '../store/sql-store.js';
import type { Store } from '../store/types.js';
import { type AlertsConfig, alertsConfig } from './config.js';
import { type AlertChannels, AlertEngine, type Clock } from './engine.js';
import { type AlertLinksPluginOptions, alertLinksPlugin } from './http.js';
import { AlertLinks } from './links.js';
import { SqlAlertStore } from './store.js';
import type { AlertStore } from './types.js';

export type { AlertEngine } from './engine.js';

export interface AlertsDeps {
  bus: FleetBus;
  store: Store;
  commands: BoxCommands;
  /** The fleet's store section (the SQLite path names the alert file of earlier versions). */
  storeConfig: FleetConfig['store'];
  config?: Partial<AlertsConfig>;
  /** Use this alert store (tests); not closed by stop(). */
  alertStore?: AlertStore;
  /** The fleet's live presence (Presence.isOnline). */
  isOnline?: (deviceId: string) => boolean;
  clock?: Clock;
}

export interface Alerts {
  engine: AlertEngine;
  store: AlertStore;
  links: AlertLinks;
  config: AlertsConfig;
  http: { plugin: typeof alertLinksPlugin; options: AlertLinksPluginOptions };
  stop(): Promise<void>;
}

/** Where the alert tables were before they moved into the fleet's file: var/fleet.db -> var/fleet-alerts.db. */
export function alertsSqlitePath(fleetSqlitePath: string): string {
  if (fleetSqlitePath === ':memory:') return ':memory:';
  return /\.db$/.test(fleetSqlitePath) ? fleetSqlitePath.replace(/\.db$/, '-alerts.db') : `${fleetSqlitePath}-alerts`;
}

/**
 * The alert store in the fleet store's database, on the fleet store's connection (pool), migrated;
 * with SQLite, the alert file of earlier versions (alertsSqlitePath) is copied in once.
 */
export async function openAlertStore(store: Store, cfg: FleetConfig['store']): Promise<AlertStore> {
  if (!(store instanceof SqlStore)) {
    throw new TypeError("the alert store needs the fleet's SQL store (SQLite or PostgreSQL) to share its connection");
  }
  const alerts = SqlAlertStore.over(store);
  await alerts.migrate();
  if (alerts.kind === 'sqlite') {
    const legacy = alertsSqlitePath(cfg.sqlitePath);
    const rows = await alerts.importLegacySqlite(legacy);
    if (rows > 0) getLogger('fleet:alerts').info({ from: legacy, rows }, 'alert tables copied into the fleet database');
  }
  return alerts;
}

export async function startAlerts(deps: AlertsDeps): Promise<Alerts> {
  const config = alertsConfig(deps.config ?? {});
  const store = deps.alertStore ?? (await openAlertStore(deps.store, deps.storeConfig));
  const links = new AlertLinks(config.linkSecret, config.publicUrl, config.linkTtlH * 3_600_000);
  let engine: AlertEngine | undefined;
  const channels: AlertChannels = {
    webhook: new WebhookChannel({
      timeoutMs: config.webhookTimeoutMs,
      attempts: config.webhookAttempts,
      backoffMs: config.webhookBackoffMs,
    }),
    sms: new SmsChannel(deps.commands, (clinicId) => engine?.smsSenders(clinicId) ?? Promise.resolve([]), {
      timeoutMs: config.smsTimeoutMs,
    }),
  };
  if (config.smtpUrl) channels.email = new EmailChannel({ url: config.smtpUrl, from: config.emailFrom });
  observeLog(store, deps.bus);
  engine = new AlertEngine({
    bus: deps.bus,
    store: deps.store,
    alerts: store,
    config,
    channels,
    commands: deps.commands,
    links,
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(deps.isOnline ? { isOnline: deps.isOnline } : {}),
  });
  await engine.start();
  const running = engine;
  return {
    engine: running,
    store,
    links,
    config,
    http: {
      plugin: alertLinksPlugin,
      options: { engine: running, links, audit: (e) => deps.store.appendAudit(e) },
    },
    async stop() {
      await running.stop();
      await channels.email?.close?.();
      if (!deps.alertStore) await store.close();
    },
  };
}

const CHANGES: Record<string, FleetBusEvents['alert.changed']['change']> = {
  opened: 'opened',
  acknowledged: 'acknowledged',
  resolved: 'resolved',
  reopened: 'reopened',
  step: 'escalated',
  exhausted: 'exhausted',
  silenced: 'silenced',
};

/**
 * Tell the fleet bus of every change of an alert ('alert.changed': the live stream of fleet/web), from the
 * one place every part of the engine records it: the alert's history (appendLog).
 */
function observeLog(store: AlertStore, bus: FleetBus): void {
  const append = store.appendLog.bind(store);
  store.appendLog = async (entry) => {
    await append(entry);
    const change = CHANGES[entry.action];
    if (!change || bus.listenerCount('alert.changed') === 0) return;
    const a = await store.getAlert(entry.alertId).catch(() => undefined);
    if (!a) return;
    bus.emit('alert.changed', {
      alertId: a.id,
      clinicId: a.clinicId,
      change,
      state: a.state,
      condition: a.condition,
      severity: a.severity,
      shortCode: a.shortCode,
      deviceId: a.deviceId,
      by: entry.by ?? 'engine',
      at: entry.at,
    });
  };
}
