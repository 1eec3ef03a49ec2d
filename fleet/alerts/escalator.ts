/**
 * Escalation planning and delivery: runs an alert's next step (leased in the
 * store so one fleet instance runs it), works out who gets what on which
 * channel, sends each notification once under its dedup key
 * "<alert>:<epoch>:<step>:<channel>:<target>" and records every attempt,
 * then moves the alert to its next step. A step cut short (crash) is run
 * again by whoever resumes it and sends only what was not recorded as sent.
 */
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { SmsTarget } from '../channels/sms.js';
import type { Channel, Notification, OnAttempt } from '../channels/types.js';
import type { WebhookTarget } from '../channels/webhook.js';
import type { ClinicDirectory, Clock } from './clinics.js';
import type { AlertContact, AlertsConfig, ChannelName, ClinicAlertSettings } from './config.js';
import { type AlertLifecycle, isoOf } from './lifecycle.js';
import type { AlertLinks } from './links.js';
import type { Alert, AlertStore, Delivery } from './types.js';

export interface AlertChannels {
  webhook?: Channel<WebhookTarget>;
  sms?: Channel<SmsTarget>;
  email?: Channel<string>;
}

export interface EscalatorDeps {
  alerts: AlertStore;
  directory: ClinicDirectory;
  lifecycle: AlertLifecycle;
  config: AlertsConfig;
  channels: AlertChannels;
  links?: AlertLinks;
  clock: Clock;
  log: Logger;
  /** A step finished (the engine re-arms its wake timer). */
  onStepDone: () => void;
}

interface Planned {
  key: string;
  send: () => Promise<void>;
}

export class Escalator {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly deps: EscalatorDeps) {}

  private iso(ms = this.deps.clock.now()): string {
    return isoOf(ms);
  }

  /** Steps running now (the engine waits for them at idle and at an orderly stop). */
  running(): Promise<void>[] {
    return [...this.inFlight.values()];
  }

  /** Run the alert's next step, once at a time per alert (a second call joins the running one). */
  runStep(alert: Alert, fresh = false): Promise<void> {
    const running = this.inFlight.get(alert.id);
    if (running) return running;
    const p = this.doStep(alert, fresh)
      .catch((e) => this.deps.log.error({ err: e, alertId: alert.id }, 'escalation step failed; retried'))
      .finally(() => {
        this.inFlight.delete(alert.id);
        this.deps.onStepDone();
      });
    this.inFlight.set(alert.id, p);
    return p;
  }

  /**
   * Run the alert's next step. `fresh`: the alert was just created by this engine with the lease on its
   * first step already held and nothing sent yet, so reading it back, leasing and looking for earlier
   * deliveries are skipped (the panic press path).
   */
  private async doStep(given: Alert, fresh: boolean): Promise<void> {
    const { alerts, config: cfg } = this.deps;
    const alert = fresh ? given : await alerts.getAlert(given.id);
    if (alert?.state !== 'open' || !alert.nextStepAt) return;
    const s = await this.deps.directory.settingsOf(alert.clinicId);
    const policy = s.policies[alert.severity] ?? s.policies.critical;
    if (!policy) return;
    const total = policy.steps.length * policy.repeat;
    if (alert.nextStep >= total) {
      await alerts.updateAlert(alert.id, { nextStepAt: null }, { epoch: alert.epoch, nextStep: alert.nextStep });
      return;
    }
    const now = this.deps.clock.now();
    // Listed as due, but read again here: another instance may have run that step meanwhile and moved the
    // alert to a later one, which is not due yet (running it now would skip its wait).
    if (!fresh && Date.parse(alert.nextStepAt) > now) return;
    const leased =
      fresh ||
      (await alerts.claimStep(
        alert.id,
        alert.epoch,
        alert.nextStep,
        cfg.instance,
        this.iso(now),
        this.iso(now + cfg.leaseS * 1000),
      ));
    if (!leased) return;
    const stepIndex = alert.nextStep % policy.steps.length;
    const step = policy.steps[stepIndex];
    if (!step) return;
    const done = fresh
      ? new Set<string>()
      : new Set((await alerts.listDeliveries(alert.id)).filter((d) => d.status === 'sent').map((d) => d.dedupKey));
    const plan = await this.plan(alert, s, step.to, step.channels);
    const todo = plan.filter((d) => !done.has(d.key));
    await Promise.all(todo.map((d) => d.send()));
    await alerts.appendLog({
      alertId: alert.id,
      at: this.iso(),
      action: 'step',
      by: cfg.instance,
      detail: `step ${stepIndex + 1} of ${policy.steps.length}, round ${Math.floor(alert.nextStep / policy.steps.length) + 1} of ${policy.repeat}: ${step.channels.join(', ')} to ${step.to.join(', ')}; ${todo.length} notification(s)`,
    });
    const next = alert.nextStep + 1;
    const nextAt = next < total ? this.iso(this.deps.clock.now() + step.waitMin * 60_000) : null;
    const moved = await alerts.updateAlert(
      alert.id,
      { nextStep: next, nextStepAt: nextAt, leaseOwner: null, leaseUntil: null },
      { epoch: alert.epoch, nextStep: alert.nextStep },
    );
    if (moved && next >= total) {
      await alerts.appendLog({
        alertId: alert.id,
        at: this.iso(),
        action: 'exhausted',
        by: 'engine',
        detail: `every step ran ${policy.repeat} time(s)`,
      });
      if (moved.severity === 'notice' && moved.state === 'open') {
        await this.deps.lifecycle.resolve(alert.id, 'engine', 'notice delivered');
      }
    }
  }

  private async recipients(clinicId: string, s: ClinicAlertSettings, to: string[]): Promise<AlertContact[]> {
    const contacts = await this.deps.directory.contactsOf(clinicId);
    const byName = new Map(contacts.map((c) => [c.name, c]));
    const out = new Map<string, AlertContact>();
    const add = (name: string) => {
      const c = byName.get(name);
      if (c) out.set(c.name, c);
    };
    for (const t of to) {
      if (t === '*') for (const c of contacts) out.set(c.name, c);
      else if (s.groups[t]) for (const m of s.groups[t] ?? []) add(m);
      else add(t);
    }
    return [...out.values()];
  }

  private async plan(alert: Alert, s: ClinicAlertSettings, to: string[], channels: ChannelName[]): Promise<Planned[]> {
    const people = await this.recipients(alert.clinicId, s, to);
    const base = `${alert.id}:${alert.epoch}:${alert.nextStep}`;
    const out: Planned[] = [];
    const clinicName = await this.deps.directory.clinicName(alert.clinicId);
    const note = (who: string, key: string): Notification => this.notification(alert, clinicName, who, key);
    const ch = this.deps.channels;
    for (const channel of channels) {
      if (channel === 'webhook') {
        const hooks = [...s.webhooks, ...this.deps.config.webhooks];
        hooks.forEach((h, i) => {
          const target = `webhook${i + 1}:${new URL(h.url).host}`;
          const key = `${base}:webhook:${target}`;
          out.push({
            key,
            send: () =>
              this.deliver(alert, 'webhook', target, key, (cb) => ch.webhook?.send(h, note('webhook', key), cb)),
          });
        });
      } else if (channel === 'sms') {
        for (const p of people) {
          if (!p.phone) continue;
          const phone = p.phone;
          const key = `${base}:sms:${p.name}`;
          out.push({
            key,
            send: () =>
              this.deliver(alert, 'sms', p.name, key, (cb) =>
                ch.sms?.send({ to: phone, clinicId: alert.clinicId }, note(p.name, key), cb),
              ),
          });
        }
      } else {
        for (const p of people) {
          if (!p.email) continue;
          const email = p.email;
          const key = `${base}:email:${p.name}`;
          out.push({
            key,
            send: () => this.deliver(alert, 'email', p.name, key, (cb) => ch.email?.send(email, note(p.name, key), cb)),
          });
        }
      }
    }
    return out;
  }

  private notification(alert: Alert, clinicName: string, who: string, key: string): Notification {
    const links = this.deps.links;
    const now = this.deps.clock.now();
    const count = alert.occurrences > 1 ? ` (${alert.occurrences} times)` : '';
    return {
      alertId: alert.id,
      dedupKey: key,
      clinicId: alert.clinicId,
      clinicName,
      condition: alert.condition,
      severity: alert.severity,
      state: alert.state,
      text: `${alert.text}${count}`,
      subject: `[${alert.severity}] ${clinicName}: ${alert.condition.replace(/_/g, ' ')} (code ${alert.shortCode})`,
      shortCode: alert.shortCode,
      occurrences: alert.occurrences,
      firstAt: alert.firstAt,
      lastAt: alert.lastAt,
      ackUrl: links ? links.url(alert.id, 'ack', who, now, alert.epoch) : '',
      resolveUrl: links ? links.url(alert.id, 'resolve', who, now, alert.epoch) : '',
      step: alert.nextStep,
      epoch: alert.epoch,
    };
  }

  private async deliver(
    alert: Alert,
    channel: ChannelName,
    target: string,
    key: string,
    send: (cb: OnAttempt) => Promise<unknown> | undefined,
  ): Promise<void> {
    const record = (status: Delivery['status'], attempt: number, error: string | null, detail: string | null) =>
      this.deps.alerts.recordDelivery({
        alertId: alert.id,
        epoch: alert.epoch,
        step: alert.nextStep,
        channel,
        target,
        dedupKey: key,
        attempt,
        status,
        error,
        detail,
        at: this.iso(),
      });
    try {
      const p = send(async (a) => {
        await record(a.ok ? 'sent' : 'failed', a.attempt, a.error ?? null, a.detail ?? null);
      });
      if (p === undefined) await record('skipped', 0, `no ${channel} channel configured`, null);
      else await p;
    } catch (e) {
      await record('failed', 0, describeError(e), null).catch(() => undefined);
    }
  }
}
