/**
 * The voicemail page: the inbox of a clinic (newest first), each message playable in the browser from
 * the fleet's audio route, and marked heard (voicemail.heard: no unheard-voicemail alert for it, and the
 * box's voicemail light goes out) when played to the end or by its button.
 */
import { html, nothing } from 'lit';
import { call, currentSession } from '../api.js';
import { Page } from '../base.js';
import { clinicList, clinicName, loadClinics } from '../clinics.js';
import { dateTime, seconds } from '../format.js';
import { live } from '../live.js';

export interface Voicemail {
  voicemailId: string;
  deviceId: string;
  serial?: string;
  clinicId: string | null;
  at: string;
  durationMs: number;
  /** The caller, masked by the fleet unless the user may see it. */
  number?: string | null;
  heardAt: string | null;
  heardBy: string | null;
  stored?: boolean;
}

class VoicemailPage extends Page {
  static override properties = { clinic: { state: true }, items: { state: true }, message: { state: true } };
  declare clinic: string;
  declare items: Voicemail[];
  declare message: string;
  private unsubscribe: (() => void) | null = null;

  constructor() {
    super();
    this.clinic = '';
    this.items = [];
    this.message = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = live.subscribe((m) => {
      if (m.kind === 'voicemail' || m.kind === 'reset') void this.load();
      if (m.kind === 'event' && (m.data.type === 'voicemail.recorded' || m.data.type === 'voicemail')) void this.load();
    });
    void loadClinics().then(() => {
      this.clinic = currentSession()?.clinicId ?? clinicList()[0]?.id ?? '';
      void this.load();
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    if (!this.clinic) return;
    try {
      this.items = await call<Voicemail[]>('voicemail.list', { clinicId: this.clinic, limit: 200 });
      this.message = '';
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  private async heard(v: Voicemail): Promise<void> {
    if (v.heardAt) return;
    try {
      await call('voicemail.heard', { voicemailId: v.voicemailId });
      this.message = 'Marked heard.';
      await this.load();
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  protected override render() {
    const canMark = currentSession()?.role !== 'viewer';
    return html`
      <h1>Voicemail</h1>
      <label for="vm-clinic">Clinic</label>
      <select id="vm-clinic" @change=${(e: Event) => {
        this.clinic = (e.target as HTMLSelectElement).value;
        void this.load();
      }}>
        ${clinicList().map((c) => html`<option value=${c.id} ?selected=${c.id === this.clinic}>${c.name}</option>`)}
      </select>
      <p role="status">${this.message}</p>
      <ul class="inbox" aria-label="Voicemail of ${clinicName(this.clinic)}">
        ${this.items.map(
          (v) => html`<li class=${v.heardAt ? 'heard' : 'unheard'} aria-label="Voicemail ${dateTime(v.at)}">
            <div>
              <strong>${dateTime(v.at)}</strong> · ${seconds(v.durationMs)} · from ${v.number ?? 'withheld'} · box
              ${v.serial ?? v.deviceId}
            </div>
            <audio controls preload="none" src="/api/v1/voicemail/${encodeURIComponent(v.voicemailId)}/audio"
              aria-label="Play voicemail ${dateTime(v.at)}" @ended=${() => void this.heard(v)} @play=${() => {
                if (canMark) void this.heard(v);
              }}></audio>
            <span class="heard-state">${v.heardAt ? `heard ${dateTime(v.heardAt)} by ${v.heardBy ?? '?'}` : 'unheard'}</span>
            ${!v.heardAt && canMark ? html`<button @click=${() => void this.heard(v)}>Mark heard</button>` : nothing}
          </li>`,
        )}
      </ul>
      ${this.items.length === 0 ? html`<p>No voicemail.</p>` : nothing}
    `;
  }
}

customElements.define('voicemail-page', VoicemailPage);
