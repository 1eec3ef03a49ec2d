/**
 * The alerts page: open, acknowledged and resolved alerts (live), one alert's escalation timeline
 * (each step and channel with its outcome, who acknowledged and how), acknowledge / resolve, silence a
 * clinic, and the clinic's alert settings (rules, escalation steps, contacts) with errors at the field.
 */
import { html, nothing } from 'lit';
import { ApiError, call, currentSession } from '../api.js';
import { Page } from '../base.js';
import { clinicList, clinicName, loadClinics } from '../clinics.js';
import { dateTime } from '../format.js';
import { live } from '../live.js';
import type { Alert, AlertLogEntry, Delivery } from '../model.js';
import '../settings-form.js';

type Tab = 'open' | 'acknowledged' | 'resolved';

interface Shown {
  alert: Alert;
  deliveries: Delivery[];
  log: AlertLogEntry[];
}

/** One line of the escalation timeline: a log entry or a delivery, in time order. */
type Line = { at: string; what: string; who: string; how: string; ok: boolean };

function timeline(s: Shown): Line[] {
  const lines: Line[] = [
    ...s.log.map((l) => ({
      at: l.at,
      what: l.action,
      who: l.by ?? '',
      how: l.detail ?? '',
      ok: true,
    })),
    ...s.deliveries.map((d) => ({
      at: d.at,
      what: `step ${d.step + 1}: ${d.channel} to ${d.target}`,
      who: '',
      how: `${d.status}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}${d.error ? `: ${d.error}` : d.detail ? `: ${d.detail}` : ''}`,
      ok: d.status !== 'failed',
    })),
  ];
  return lines.sort((a, b) => a.at.localeCompare(b.at));
}

class AlertsPage extends Page {
  static override properties = {
    tab: { state: true },
    alerts: { state: true },
    shown: { state: true },
    message: { state: true },
    settingsClinic: { state: true },
    settings: { state: true },
    silenceErrors: { state: true },
  };
  declare tab: Tab;
  declare alerts: Alert[];
  declare shown: Shown | null;
  declare message: string;
  declare settingsClinic: string;
  declare settings: Record<string, unknown> | null;
  declare silenceErrors: Record<string, string>;
  private unsubscribe: (() => void) | null = null;
  private reloading: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    this.tab = 'open';
    this.alerts = [];
    this.shown = null;
    this.message = '';
    this.settingsClinic = '';
    this.settings = null;
    this.silenceErrors = {};
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = live.subscribe((m) => {
      if (m.kind !== 'alert' && m.kind !== 'reset') return;
      // Coalesce bursts: one reload per quarter second.
      clearTimeout(this.reloading);
      this.reloading = setTimeout(() => void this.load(), 250);
    });
    void loadClinics().then(() => {
      const s = currentSession();
      this.settingsClinic = s?.clinicId ?? clinicList()[0]?.id ?? '';
      void this.loadSettings();
    });
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
    clearTimeout(this.reloading);
  }

  private async load(): Promise<void> {
    try {
      this.alerts = await call<Alert[]>('alerts.list', { state: this.tab, limit: 200 });
      if (this.shown) await this.show(this.shown.alert.id);
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  private async show(id: string): Promise<void> {
    this.shown = await call<Shown>('alerts.show', { id });
  }

  private async act(method: 'alerts.ack' | 'alerts.resolve', params: Record<string, unknown>): Promise<void> {
    try {
      await call(method, params);
      this.message = method === 'alerts.ack' ? 'Acknowledged.' : 'Resolved.';
      await this.load();
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  private async loadSettings(): Promise<void> {
    if (!this.settingsClinic) return;
    try {
      this.settings = await call<Record<string, unknown>>('alerts.settings.get', { clinicId: this.settingsClinic });
    } catch {
      this.settings = null;
    }
  }

  private readonly saveSettings = async (settings: Record<string, unknown>): Promise<string> => {
    this.settings = await call<Record<string, unknown>>('alerts.settings.set', {
      clinicId: this.settingsClinic,
      settings,
    });
    return `Saved the alert settings of ${clinicName(this.settingsClinic)}.`;
  };

  private async silence(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const hours = Number(f.get('hours'));
    const from = new Date();
    const params = {
      clinicId: String(f.get('clinicId')),
      from: from.toISOString(),
      until: new Date(from.getTime() + (Number.isFinite(hours) ? hours : 0) * 3_600_000).toISOString(),
      reason: String(f.get('reason') ?? '') || undefined,
    };
    try {
      await call('alerts.silence', params);
      this.silenceErrors = {};
      this.message = `Silenced ${clinicName(params.clinicId)} for ${hours} h.`;
    } catch (err) {
      const field = err instanceof ApiError && err.field ? err.field.replace(/^\//, '') : '';
      this.silenceErrors = {
        [field === 'until' || field === 'from' ? 'hours' : field || '']: String((err as Error).message),
      };
    }
  }

  private tabs() {
    const tabs: Tab[] = ['open', 'acknowledged', 'resolved'];
    return html`<div role="tablist" aria-label="Alert state">
      ${tabs.map(
        (t) =>
          html`<button role="tab" aria-selected=${this.tab === t ? 'true' : 'false'} @click=${() => {
            this.tab = t;
            this.shown = null;
            void this.load();
          }}>${t}</button>`,
      )}
    </div>`;
  }

  private detail(s: Shown) {
    const a = s.alert;
    const canAct = currentSession()?.role !== 'viewer';
    return html`<section class="detail" aria-labelledby="alert-h">
      <h2 id="alert-h">Alert ${a.shortCode}: ${a.condition}</h2>
      <p>${a.text}</p>
      <dl class="facts">
        <dt>Clinic</dt><dd>${clinicName(a.clinicId)}</dd>
        <dt>State</dt><dd data-testid="alert-state">${a.state}</dd>
        <dt>Severity</dt><dd>${a.severity}</dd>
        <dt>Opened</dt><dd>${dateTime(a.firstAt)}</dd>
        <dt>Acknowledged</dt><dd>${a.ackedAt ? `${dateTime(a.ackedAt)} by ${a.ackedBy}` : '—'}</dd>
        <dt>Resolved</dt><dd>${a.resolvedAt ? `${dateTime(a.resolvedAt)} by ${a.resolvedBy}` : '—'}</dd>
      </dl>
      ${
        canAct && a.state !== 'resolved'
          ? html`<div class="actions">
            ${a.state === 'open' ? html`<button @click=${() => void this.act('alerts.ack', { id: a.id })}>Acknowledge</button>` : nothing}
            <button @click=${() => void this.act('alerts.resolve', { id: a.id })}>Resolve</button>
          </div>`
          : nothing
      }
      <h3>Escalation timeline</h3>
      <table aria-label="Escalation timeline">
        <thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Who</th><th scope="col">How</th></tr></thead>
        <tbody>
          ${timeline(s).map(
            (l) => html`<tr class=${l.ok ? '' : 'failed'}>
              <td><time datetime=${l.at}>${dateTime(l.at)}</time></td><td>${l.what}</td><td>${l.who}</td><td>${l.how}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </section>`;
  }

  protected override render() {
    const clinics = clinicList();
    return html`
      <h1>Alerts</h1>
      <p role="status">${this.message}</p>
      ${this.tabs()}
      <table class="alerts" aria-label="${this.tab} alerts">
        <thead>
          <tr><th scope="col">Code</th><th scope="col">Condition</th><th scope="col">Clinic</th><th scope="col">Severity</th>
          <th scope="col">Since</th><th scope="col">Occurrences</th><th scope="col"></th></tr>
        </thead>
        <tbody>
          ${this.alerts.map(
            (a) => html`<tr>
              <td>${a.shortCode}</td><td>${a.condition}</td><td>${clinicName(a.clinicId)}</td><td>${a.severity}</td>
              <td>${dateTime(a.firstAt)}</td><td>${a.occurrences}</td>
              <td><button @click=${() => void this.show(a.id)} aria-label="Show alert ${a.shortCode}">Show</button></td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${this.alerts.length === 0 ? html`<p>No ${this.tab} alerts.</p>` : nothing}
      ${this.shown ? this.detail(this.shown) : nothing}

      <section aria-labelledby="silence-h">
        <h2 id="silence-h">Silence a clinic</h2>
        <form class="inline" @submit=${(e: SubmitEvent) => void this.silence(e)}>
          <label for="sil-clinic">Clinic</label>
          <select id="sil-clinic" name="clinicId">${clinics.map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select>
          <label for="sil-hours">For hours</label>
          <input id="sil-hours" name="hours" value="2" inputmode="decimal" aria-describedby="sil-hours-err" />
          <span class="field-error" id="sil-hours-err">${this.silenceErrors['hours'] ?? ''}</span>
          <label for="sil-reason">Reason</label>
          <input id="sil-reason" name="reason" />
          <button type="submit">Silence</button>
          <span class="field-error">${this.silenceErrors[''] ?? ''}</span>
        </form>
      </section>

      <section aria-labelledby="rules-h">
        <h2 id="rules-h">Rules, escalation steps and contacts</h2>
        <label for="rules-clinic">Clinic</label>
        <select id="rules-clinic" @change=${(e: Event) => {
          this.settingsClinic = (e.target as HTMLSelectElement).value;
          void this.loadSettings();
        }}>
          ${clinics.map((c) => html`<option value=${c.id} ?selected=${c.id === this.settingsClinic}>${c.name}</option>`)}
        </select>
        ${
          this.settings
            ? html`<settings-form label="Alert settings" prefix="alr" .strip=${['settings']} .value=${this.settings}
                .save=${this.saveSettings}></settings-form>`
            : html`<p>No clinic to show.</p>`
        }
      </section>
    `;
  }
}

customElements.define('alerts-page', AlertsPage);
