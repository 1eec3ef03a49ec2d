/**
 * The box page: what the fleet knows of one box (presence, clinic, versions), its event timeline
 * (newest first, live), its telemetry history as a chart, and its configuration desired vs reported
 * with the editor.
 */
import { html, nothing } from 'lit';
import { call } from '../api.js';
import { Page } from '../base.js';
import { clinicName, loadClinics } from '../clinics.js';
import { ago, bytes, dateTime } from '../format.js';
import { type LiveMessage, live } from '../live.js';
import { type Box, drift, type TelemetryPoint } from '../model.js';
import '../chart.js';
import '../config-editor.js';

interface StoredEvent {
  id: string;
  deviceId: string;
  seq: number;
  type: string;
  at: string;
  receivedAt: string;
  body: Record<string, unknown>;
}

interface Shown {
  box: Box;
  desired: { version: number; createdBy: string; createdAt: string } | null;
  gaps: { fromSeq: number; toSeq: number }[];
  eventCount: number;
}

/** A line of the timeline: the event's type and the facts of its body that are not patient data. */
function summary(e: StoredEvent): string {
  const b = e.body ?? {};
  const facts: string[] = [];
  for (const k of ['outcome', 'by', 'rings', 'state', 'status', 'source', 'reason', 'enabled', 'durationMs']) {
    if (b[k] !== undefined && b[k] !== null) facts.push(`${k} ${String(b[k])}`);
  }
  return facts.join(', ');
}

class BoxPage extends Page {
  static override properties = {
    ref: { type: String },
    shown: { state: true },
    events: { state: true },
    telemetry: { state: true },
    error: { state: true },
  };
  declare ref: string;
  declare shown: Shown | null;
  declare events: StoredEvent[];
  declare telemetry: TelemetryPoint[];
  declare error: string;
  private unsubscribe: (() => void) | null = null;
  private loadedFor = '';

  constructor() {
    super();
    this.ref = '';
    this.shown = null;
    this.events = [];
    this.telemetry = [];
    this.error = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = live.subscribe((m) => this.onLive(m));
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  protected override willUpdate(): void {
    if (this.ref && this.ref !== this.loadedFor) {
      this.loadedFor = this.ref;
      void this.load();
    }
  }

  private async load(): Promise<void> {
    try {
      const [shown] = await Promise.all([call<Shown>('boxes.show', { box: this.ref }), loadClinics()]);
      this.shown = shown;
      this.error = '';
      this.events = await call<StoredEvent[]>('events.list', { box: this.ref, limit: 200 });
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
    try {
      const from = new Date(Date.now() - 7 * 86_400_000).toISOString();
      const t = await call<TelemetryPoint[]>('telemetry.history', { box: this.ref, from, limit: 5000 });
      this.telemetry = t.slice().sort((a, b) => a.at.localeCompare(b.at));
    } catch {
      this.telemetry = [];
    }
  }

  private mine(d: Record<string, unknown>): boolean {
    const b = this.shown?.box;
    if (!b) return false;
    return d.serial === b.serial || (b.deviceId !== null && d.deviceId === b.deviceId);
  }

  private onLive(m: LiveMessage): void {
    if (m.kind === 'reset') {
      void this.load();
      return;
    }
    const d = m.data;
    if (!this.mine(d) || !this.shown) return;
    if (m.kind === 'presence') {
      this.shown = {
        ...this.shown,
        box: {
          ...this.shown.box,
          online: typeof d.online === 'boolean' ? d.online : this.shown.box.online,
          lastSeenAt: String(d.lastSeen ?? d.lastSeenAt ?? d.at ?? this.shown.box.lastSeenAt),
        },
      };
    } else if (m.kind === 'event') {
      const e = (d.event ?? d) as StoredEvent;
      if (e.id && !this.events.some((x) => x.id === e.id)) this.events = [e, ...this.events].slice(0, 500);
    } else if (m.kind === 'telemetry') {
      const t = (d.telemetry ?? d) as TelemetryPoint;
      if (t.at) this.telemetry = [...this.telemetry, t].slice(-5000);
    } else if (m.kind === 'box' || m.kind === 'config') {
      this.shown = { ...this.shown, box: { ...this.shown.box, ...((d.box ?? d) as Partial<Box>) } };
    }
  }

  private telemetryChart() {
    const t = this.telemetry;
    if (t.length === 0) return html`<p>No telemetry stored for this box yet.</p>`;
    const x = t.map((s) => Date.parse(s.at) / 1000);
    const last = t[t.length - 1]!;
    return html`
      <u-chart
        label="Signal (dBm) and outbox depth over time"
        .series=${[{ label: 'signal dBm', color: '#1f6feb' }, { label: 'outbox depth', color: '#d97706' }]}
        .data=${[x, t.map((s) => s.signalDbm ?? null), t.map((s) => s.outboxDepth ?? null)]}
      ></u-chart>
      <p>
        Last sample ${ago(last.at)}: signal ${last.signalDbm ?? '—'} dBm, operator ${last.operator ?? '—'},
        outbox ${last.outboxDepth ?? '—'}, free disk ${bytes(last.freeDiskBytes)}, version ${last.softwareVersion ?? '—'}.
      </p>
    `;
  }

  protected override render() {
    if (this.error) return html`<h1>Box ${this.ref}</h1><p class="error" role="alert">${this.error}</p>`;
    const s = this.shown;
    if (!s) return html`<h1>Box ${this.ref}</h1><p role="status">Loading…</p>`;
    const b = s.box;
    return html`
      <h1>Box ${b.serial}</h1>
      <dl class="facts">
        <dt>State</dt>
        <dd><span class="pill ${b.online ? 'ok' : 'bad'}" data-testid="box-state">${b.online ? 'online' : 'offline'}</span></dd>
        <dt>Last seen</dt><dd title=${b.lastSeenAt ?? ''}>${ago(b.lastSeenAt)}</dd>
        <dt>Clinic</dt>
        <dd>${b.clinicId ? html`<a href="/clinics/${encodeURIComponent(b.clinicId)}">${clinicName(b.clinicId)}</a>` : '—'}</dd>
        <dt>Device id</dt><dd>${b.deviceId ?? '—'}</dd>
        <dt>Claim</dt><dd>${b.claimState}</dd>
        <dt>Model, firmware</dt><dd>${b.model ?? '—'}, ${b.firmware ?? '—'}</dd>
        <dt>Events stored</dt><dd>${s.eventCount}${s.gaps.length ? ` (${s.gaps.length} gaps)` : ''}</dd>
      </dl>

      <section aria-labelledby="cfg-h">
        <h2 id="cfg-h">Configuration: desired vs reported</h2>
        <table class="compare">
          <thead><tr><th scope="col"></th><th scope="col">Desired (fleet)</th><th scope="col">Reported (box)</th></tr></thead>
          <tbody>
            <tr>
              <th scope="row">Version</th><td>${s.desired?.version ?? 'none'}</td><td>${b.reportedVersion ?? 'none'}</td>
            </tr>
            <tr>
              <th scope="row">State</th>
              <td>${s.desired ? `set by ${s.desired.createdBy}, ${dateTime(s.desired.createdAt)}` : '—'}</td>
              <td>${b.reportedState ?? '—'}${b.reportedReason ? html`: <span class="error">${b.reportedReason}</span>` : nothing}</td>
            </tr>
            <tr><th scope="row">Drift</th><td colspan="2">${drift(b)}</td></tr>
          </tbody>
        </table>
        ${b.claimState === 'approved' ? html`<config-editor .box=${b.serial}></config-editor>` : nothing}
      </section>

      <section aria-labelledby="tel-h">
        <h2 id="tel-h">Telemetry (last 7 days)</h2>
        ${this.telemetryChart()}
      </section>

      <section aria-labelledby="ev-h">
        <h2 id="ev-h">Event timeline</h2>
        <ol class="timeline" aria-label="Event timeline">
          ${this.events.map(
            (e) => html`<li>
              <time datetime=${e.at}>${dateTime(e.at)}</time> <strong>${e.type}</strong> <span>${summary(e)}</span>
              <small>#${e.seq}</small>
            </li>`,
          )}
        </ol>
        ${this.events.length === 0 ? html`<p>No events stored yet.</p>` : nothing}
      </section>
    `;
  }
}

customElements.define('box-page', BoxPage);
