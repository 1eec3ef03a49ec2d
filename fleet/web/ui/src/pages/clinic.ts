/**
 * The clinic page: without an id, the list of clinics; with one, the clinic's boxes and its call
 * figures (figures.ts: today and the last weeks against its targets, busiest hours, the call-back list).
 */
import { html, nothing } from 'lit';
import { call } from '../api.js';
import { Page } from '../base.js';
import { type Clinic, clinicList, loadClinics } from '../clinics.js';
import { ago } from '../format.js';
import { live } from '../live.js';
import type { Box } from '../model.js';
import '../figures.js';

class ClinicPage extends Page {
  static override properties = {
    clinicId: { type: String },
    clinic: { state: true },
    boxes: { state: true },
    error: { state: true },
  };
  declare clinicId: string;
  declare clinic: Clinic | null;
  declare boxes: Box[];
  declare error: string;
  private loadedFor: string | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor() {
    super();
    this.clinicId = '';
    this.clinic = null;
    this.boxes = [];
    this.error = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = live.subscribe((m) => {
      if (!this.clinicId) return;
      if (m.kind === 'presence' || m.kind === 'reset') {
        const key = m.data.serial ?? m.data.deviceId;
        if (m.kind === 'reset' || this.boxes.some((b) => b.serial === key || b.deviceId === key)) void this.load();
      }
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  protected override willUpdate(): void {
    if (this.loadedFor !== this.clinicId) {
      this.loadedFor = this.clinicId;
      void this.load();
    }
  }

  private async load(): Promise<void> {
    try {
      await loadClinics();
      if (!this.clinicId) {
        this.requestUpdate();
        return;
      }
      const r = await call<{ clinic: Clinic; boxes: Box[] }>('clinics.show', { clinicId: this.clinicId });
      this.clinic = r.clinic;
      this.boxes = r.boxes;
      this.error = '';
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  protected override render() {
    if (!this.clinicId) {
      return html`<h1>Clinics</h1>
        <ul class="clinics" aria-label="Clinics">
          ${clinicList().map((c) => html`<li><a href="/clinics/${encodeURIComponent(c.id)}">${c.name}</a> · ${c.timezone}</li>`)}
        </ul>
        ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}`;
    }
    if (this.error) return html`<h1>Clinic</h1><p class="error" role="alert">${this.error}</p>`;
    const c = this.clinic;
    if (!c) return html`<h1>Clinic</h1><p role="status">Loading…</p>`;
    return html`
      <h1>${c.name}</h1>
      <p>Time zone ${c.timezone}${c.answeringService ? ` · answering service ${c.answeringService}` : ''}</p>
      <clinic-figures .clinicId=${c.id} .timezone=${c.timezone}></clinic-figures>
      <section aria-labelledby="cb-h">
        <h2 id="cb-h">Boxes</h2>
        <ul aria-label="Boxes of ${c.name}">
          ${this.boxes.map(
            (b) => html`<li>
              <a href="/boxes/${encodeURIComponent(b.serial)}">${b.serial}</a>
              <span class="pill ${b.online ? 'ok' : 'bad'}">${b.online ? 'online' : 'offline'}</span> last seen ${ago(b.lastSeenAt)}
            </li>`,
          )}
        </ul>
      </section>
    `;
  }
}

customElements.define('clinic-page', ClinicPage);
