/**
 * The alert acknowledgement links served for real: an alert engine on
 * SQLite stores (test/helpers/alerts.ts) with a clock the test moves, a
 * recording channel that keeps the links the engine sends, and the link
 * pages on fastify listening on a loopback port.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { alertsConfig, clinicAlertSettings } from '../../fleet/alerts/config.js';
import { AlertEngine } from '../../fleet/alerts/engine.js';
import { alertLinksPlugin } from '../../fleet/alerts/http.js';
import { AlertLinks } from '../../fleet/alerts/links.js';
import type { Notification } from '../../fleet/channels/types.js';
import { type AlertFixture, alertFixture, RecordingChannel } from '../helpers/alerts.js';

export interface LinkServer {
  fx: AlertFixture;
  engine: AlertEngine;
  /** http://127.0.0.1:<port> */
  base: string;
  clock: { t: number };
  /** Notifications sent (their ackUrl / resolveUrl point at `base`). */
  sent(): Notification[];
  close(): Promise<void>;
}

const PUBLIC = 'http://fleet.test';

export async function startLinkServer(): Promise<LinkServer> {
  const fx = await alertFixture();
  const clock = { t: Date.now() };
  const links = new AlertLinks('security-link-secret', PUBLIC, 24 * 3_600_000);
  const webhook = new RecordingChannel<unknown>();
  const engine = new AlertEngine({
    bus: fx.bus,
    store: fx.store,
    alerts: fx.alerts,
    config: alertsConfig({ webhooks: [{ url: 'http://hooks.test/x', secret: 'hook-secret-x' }] }),
    channels: { webhook, email: new RecordingChannel(), sms: new RecordingChannel() },
    links,
    clock: { now: () => clock.t },
  });
  await engine.start();
  await fx.alerts.putClinicSettings(
    fx.clinic.id,
    clinicAlertSettings({
      ackTimeoutMin: 10,
      policies: { critical: { steps: [{ to: ['alice'], channels: ['webhook'], waitMin: 2 }], repeat: 1 } },
    }),
  );
  const app: FastifyInstance = Fastify();
  await app.register(alertLinksPlugin, { engine, links });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const here = (u: string) => u.replace(PUBLIC, base);
  return {
    fx,
    engine,
    base,
    clock,
    sent: () => webhook.sent.map((s) => ({ ...s.n, ackUrl: here(s.n.ackUrl), resolveUrl: here(s.n.resolveUrl) })),
    close: async () => {
      await app.close();
      await engine.stop();
      await fx.close();
    },
  };
}
