/**
 * The call figures of a clinic (figures.clinic, figures.heatmap; definitions in docs/FIGURES.md): today
 * per hour and the last weeks per week against the clinic's targets (uPlot charts, with the numbers
 * beside them), the busiest hours of the week as a heatmap, and the call-back list of missed and
 * abandoned callers, each markable as called back.
 */
import type { Static } from '@sinclair/typebox';
import { html, nothing } from 'lit';
import type { FIGURES_OPS_METHODS, FiguresSchema } from '../../../../shared/contract/figures-ops.js';
import { call, currentSession } from './api.js';
import { Page } from './base.js';
import { dateTime, percent, seconds } from './format.js';
import { live } from './live.js';
import './chart.js';

type Figures = Static<typeof FiguresSchema>;
type ClinicFiguresResult = Static<(typeof FIGURES_OPS_METHODS)['figures.clinic']['result']>;
type Heatmap = Static<(typeof FIGURES_OPS_METHODS)['figures.heatmap']['result']>;

/** A row of callbacks.list (shared/contract/patients-ops.ts CallbackSchema; only what the page shows). */
interface Callback {
  callId: string;
  createdAt: string;
  reason: string;
  caller?: string | null;
  patient?: { name?: string | null } | null;
  doneAt?: string | null;
  doneBy?: string | null;
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const WEEKS = 8;

/** YYYY-MM-DD on the clinic's wall clock, `daysBack` days before today. */
function localDate(timezone: string, daysBack = 0): string {
  const d = new Date(Date.now() - daysBack * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: timezone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(d);
}

/** Seconds since the epoch of a wall-clock bucket start ("YYYY-MM-DDTHH:00"), for the chart's x axis. */
function xOf(start: string): number {
  return Date.parse(`${start.length === 10 ? `${start}T00:00` : start}:00Z`) / 1000;
}

function kpi(name: string, key: string, value: string, below = false) {
  return html`<div><dt id="kpi-${key}">${name}</dt><dd aria-labelledby="kpi-${key}" data-kpi=${key} class=${below ? 'below' : ''}>${value}</dd></div>`;
}

class ClinicFigures extends Page {
  static override properties = {
    clinicId: { type: String },
    timezone: { type: String },
    today: { state: true },
    weeks: { state: true },
    heatmap: { state: true },
    callbacks: { state: true },
    error: { state: true },
  };
  declare clinicId: string;
  declare timezone: string;
  declare today: ClinicFiguresResult | null;
  declare weeks: ClinicFiguresResult | null;
  declare heatmap: Heatmap | null;
  declare callbacks: Callback[] | null;
  declare error: string;
  private loadedFor = '';
  private unsubscribe: (() => void) | null = null;
  private reloading: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    this.clinicId = '';
    this.timezone = 'UTC';
    this.today = null;
    this.weeks = null;
    this.heatmap = null;
    this.callbacks = null;
    this.error = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // A call that ends changes today's figures: reload (at most every 2 s) when a call event arrives.
    this.unsubscribe = live.subscribe((m) => {
      const type = String(m.data.type ?? '');
      // The call-back list is written after the call events (fleet/patients): it has its own message.
      if (m.kind === 'calllog') {
        if (m.data.clinicId === this.clinicId) void this.loadCallbacks();
        return;
      }
      if (m.kind !== 'reset' && !(m.kind === 'event' && type.startsWith('call.'))) return;
      clearTimeout(this.reloading);
      this.reloading = setTimeout(() => void this.load(), 2000);
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
    clearTimeout(this.reloading);
  }

  protected override willUpdate(): void {
    if (this.clinicId && this.clinicId !== this.loadedFor) {
      this.loadedFor = this.clinicId;
      void this.load();
    }
  }

  private async load(): Promise<void> {
    const clinic = this.clinicId;
    const today = localDate(this.timezone);
    try {
      const [t, w, h] = await Promise.all([
        call<ClinicFiguresResult>('figures.clinic', { clinic, from: today, to: today, bucket: 'hour' }),
        call<ClinicFiguresResult>('figures.clinic', {
          clinic,
          from: localDate(this.timezone, WEEKS * 7 - 1),
          to: today,
          bucket: 'week',
        }),
        call<Heatmap>('figures.heatmap', { clinic, weeks: WEEKS }),
      ]);
      this.today = t;
      this.weeks = w;
      this.heatmap = h;
      this.error = '';
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
    await this.loadCallbacks();
  }

  private async loadCallbacks(): Promise<void> {
    try {
      this.callbacks = await call<Callback[]>('callbacks.list', {
        clinicId: this.clinicId,
        state: 'all',
        limit: 200,
      });
    } catch {
      this.callbacks = null;
    }
  }

  private async calledBack(c: Callback): Promise<void> {
    try {
      await call('callbacks.done', { callId: c.callId });
      await this.load();
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  private kpis(f: Figures, targetS: number) {
    return html`<dl class="kpis" aria-label="Today's figures">
      ${kpi('Offered', 'offered', String(f.offered))} ${kpi('Answered', 'answered', String(f.answered))}
      ${kpi('Abandoned', 'abandoned', String(f.abandoned))}
      ${kpi('Short abandons', 'shortAbandoned', String(f.shortAbandoned))} ${kpi('Missed', 'missed', String(f.missed))}
      ${kpi('Rolled over', 'rolledOver', String(f.rolledOver))} ${kpi('Voicemail', 'voicemail', String(f.voicemail))}
      ${kpi('Average speed of answer', 'asa', f.asaS === null ? '—' : seconds(f.asaS * 1000))}
      ${kpi('90 % answered within', 'p90', f.p90AnswerS === null ? '—' : `${f.p90AnswerS} s`)}
      ${kpi(`Service level (${targetS} s)`, 'serviceLevel', percent(f.serviceLevel))}
      ${kpi('Abandonment rate', 'abandonRate', percent(f.abandonRate))}
      ${kpi('Repeat calls', 'repeatCalls', String(f.repeatCalls))}
      ${kpi('Follow-up SMS sent', 'followupSmsSent', String(f.followupSmsSent))}
    </dl>`;
  }

  private todayChart(t: ClinicFiguresResult) {
    const x = t.series.map((s) => xOf(s.start));
    return html`<u-chart
      label="Calls offered and answered per hour today"
      .series=${[
        { label: 'offered', color: '#6b7280', bars: true },
        { label: 'answered', color: '#1a7f37' },
        { label: 'abandoned + missed', color: '#c0262d' },
      ]}
      .data=${[x, t.series.map((s) => s.offered), t.series.map((s) => s.answered), t.series.map((s) => s.abandoned + s.missed)]}
    ></u-chart>`;
  }

  private weeksChart(w: ClinicFiguresResult) {
    const x = w.series.map((s) => xOf(s.start));
    const target = w.targets.serviceLevelTargetS;
    return html`<u-chart
        label="Average and 90th percentile speed of answer per week against the clinic's target"
        .series=${[
          { label: 'ASA s', color: '#1f6feb' },
          { label: '90 % within s', color: '#6b7280' },
          { label: `target ${target} s`, color: '#c0262d', dash: [6, 4] },
        ]}
        .data=${[x, w.series.map((s) => s.asaS), w.series.map((s) => s.p90AnswerS), x.map(() => target)]}
      ></u-chart>
      <table aria-label="Figures per week">
        <thead><tr><th scope="col">Week of</th><th scope="col">Offered</th><th scope="col">Answered</th>
          <th scope="col">Abandoned</th><th scope="col">Missed</th><th scope="col">ASA</th><th scope="col">Service level</th></tr></thead>
        <tbody>
          ${w.series.map(
            (s) => html`<tr><th scope="row">${s.start.slice(0, 10)}</th><td>${s.offered}</td><td>${s.answered}</td>
              <td>${s.abandoned}</td><td>${s.missed}</td><td>${s.asaS === null ? '—' : seconds(s.asaS * 1000)}</td>
              <td>${percent(s.serviceLevel)}</td></tr>`,
          )}
        </tbody>
      </table>`;
  }

  private heat(h: Heatmap) {
    const shade = (n: number) => (h.max === 0 ? 0 : n / h.max);
    return html`<table class="heatmap" aria-label="Calls offered per weekday and hour, last ${h.weeks} weeks">
      <thead><tr><th scope="col"></th>${Array.from({ length: 24 }, (_, i) => html`<th scope="col">${i}</th>`)}</tr></thead>
      <tbody>
        ${h.offered.map(
          (row, d) =>
            html`<tr><th scope="row">${DAYS[d]}</th>${row.map(
              (n) =>
                html`<td style="background: rgba(31, 111, 235, ${shade(n).toFixed(2)}); color: ${shade(n) > 0.6 ? '#fff' : 'inherit'}">${n || ''}</td>`,
            )}</tr>`,
        )}
      </tbody>
    </table>`;
  }

  private callbackList(list: Callback[]) {
    // callbacks.done is an operator's (shared/contract/patients-ops.ts): viewers and clinic users see the list only.
    const role = currentSession()?.role;
    const canMark = role === 'operator' || role === 'admin';
    if (list.length === 0) return html`<p>Nobody to call back.</p>`;
    return html`<table aria-label="Call-back list">
      <thead><tr><th scope="col">When</th><th scope="col">Caller</th><th scope="col">Outcome</th><th scope="col">Called back</th></tr></thead>
      <tbody>
        ${list.map(
          (c) => html`<tr>
            <td>${dateTime(c.createdAt)}</td><td>${c.caller ?? 'withheld'}${c.patient?.name ? ` (${c.patient.name})` : ''}</td><td>${c.reason}</td>
            <td>${
              c.doneAt
                ? `${dateTime(c.doneAt)} by ${c.doneBy ?? '?'}`
                : canMark
                  ? html`<button @click=${() => void this.calledBack(c)}>Mark called back</button>`
                  : 'not yet'
            }</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  protected override render() {
    const t = this.today;
    return html`
      <section aria-labelledby="fig-today-h">
        <h2 id="fig-today-h">Today</h2>
        ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
        ${t ? html`${this.kpis(t.totals, t.targets.serviceLevelTargetS)} ${this.todayChart(t)}` : html`<p role="status">Loading…</p>`}
      </section>
      <section aria-labelledby="fig-weeks-h">
        <h2 id="fig-weeks-h">Last ${WEEKS} weeks</h2>
        ${this.weeks ? this.weeksChart(this.weeks) : nothing}
      </section>
      <section aria-labelledby="fig-heat-h">
        <h2 id="fig-heat-h">Busiest hours</h2>
        ${this.heatmap ? this.heat(this.heatmap) : nothing}
      </section>
      <section aria-labelledby="fig-cb-h">
        <h2 id="fig-cb-h">Call-back list</h2>
        ${this.callbacks ? this.callbackList(this.callbacks) : html`<p>The call-back list is not available from this fleet.</p>`}
      </section>
    `;
  }
}

customElements.define('clinic-figures', ClinicFigures);
