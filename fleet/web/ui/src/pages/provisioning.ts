/**
 * The provisioning page: claims waiting for approval (approve into a clinic, or reject), registering
 * boxes in advance, each clinic's settings template (clinics.setDefaults: applied to all its boxes),
 * and the configuration editor of one box. Errors show next to the field they name.
 */
import { html, nothing } from 'lit';
import { call } from '../api.js';
import { Page } from '../base.js';
import { clinicList, clinicName, loadClinics } from '../clinics.js';
import { errorId, type FieldErrors, fieldErrors } from '../fields.js';
import { dateTime } from '../format.js';
import { live } from '../live.js';
import type { Box } from '../model.js';
import '../config-editor.js';
import '../settings-form.js';

class ProvisioningPage extends Page {
  static override properties = {
    claims: { state: true },
    message: { state: true },
    regErrors: { state: true },
    templateClinic: { state: true },
    editBox: { state: true },
  };
  declare claims: Box[];
  declare message: string;
  declare regErrors: FieldErrors;
  declare templateClinic: string;
  declare editBox: string;
  private unsubscribe: (() => void) | null = null;

  constructor() {
    super();
    this.claims = [];
    this.message = '';
    this.regErrors = {};
    this.templateClinic = '';
    this.editBox = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = live.subscribe((m) => {
      if (m.kind === 'box' || m.kind === 'presence' || m.kind === 'reset') void this.load();
    });
    void loadClinics().then(() => {
      this.templateClinic = clinicList()[0]?.id ?? '';
    });
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    try {
      this.claims = await call<Box[]>('claims.list', { limit: 1000 });
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  private async approve(serial: string): Promise<void> {
    const sel = this.querySelector<HTMLSelectElement>(`select[data-serial="${serial}"]`);
    try {
      await call('claims.approve', { serial, ...(sel?.value ? { clinicId: sel.value } : {}) });
      this.message = `Approved ${serial}.`;
      await this.load();
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  private async reject(serial: string): Promise<void> {
    const reason = prompt(`Why reject ${serial}?`);
    if (!reason) return;
    try {
      await call('claims.reject', { serial, reason });
      this.message = `Rejected ${serial}.`;
      await this.load();
    } catch (e) {
      this.message = e instanceof Error ? e.message : String(e);
    }
  }

  private async register(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const f = new FormData(form);
    const params: Record<string, unknown> = { serial: String(f.get('serial') ?? '').trim() };
    const secret = String(f.get('claimSecret') ?? '').trim();
    if (secret) params.claimSecret = secret;
    if (f.get('clinicId')) params.clinicId = String(f.get('clinicId'));
    try {
      const b = await call<Box>('boxes.register', params);
      this.regErrors = {};
      this.message = `Registered ${b.serial}${b.clinicId ? ` for ${clinicName(b.clinicId)}` : ''}.`;
      form.reset();
    } catch (err) {
      this.regErrors = fieldErrors(err, ['serial', 'claimSecret', 'clinicId']);
    }
  }

  private readonly saveTemplate = async (defaults: Record<string, unknown>): Promise<string> => {
    const r = await call<{ boxesUpdated: number }>('clinics.setDefaults', {
      clinicId: this.templateClinic,
      defaults: Object.keys(defaults).length ? defaults : null,
    });
    await loadClinics(true);
    this.requestUpdate();
    return `Saved; ${r.boxesUpdated} boxes of ${clinicName(this.templateClinic)} updated.`;
  };

  private regField(name: string, label: string, attrs: { required?: boolean } = {}) {
    const id = `reg-${name}`;
    const err = this.regErrors[name];
    return html`<div class="field ${err ? 'has-error' : ''}">
      <label for=${id}>${label}</label>
      <input id=${id} name=${name} ?required=${attrs.required} aria-invalid=${err ? 'true' : 'false'}
        aria-describedby=${errorId('reg', name)} />
      <span class="field-error" id=${errorId('reg', name)}>${err ?? ''}</span>
    </div>`;
  }

  protected override render() {
    const clinics = clinicList();
    const template = clinics.find((c) => c.id === this.templateClinic);
    return html`
      <h1>Provisioning</h1>
      <p role="status">${this.message}</p>

      <section aria-labelledby="claims-h">
        <h2 id="claims-h">Claims to approve</h2>
        <table aria-label="Claims to approve">
          <thead><tr><th scope="col">Serial</th><th scope="col">Model</th><th scope="col">Firmware</th>
            <th scope="col">Asked</th><th scope="col">Clinic</th><th scope="col"></th></tr></thead>
          <tbody>
            ${this.claims.map(
              (b) => html`<tr>
                <th scope="row">${b.serial}</th><td>${b.model ?? '—'}</td><td>${b.firmware ?? '—'}</td>
                <td>${dateTime(b.updatedAt)}</td>
                <td>
                  <label class="visually-hidden" for="claim-clinic-${b.serial}">Clinic for ${b.serial}</label>
                  <select id="claim-clinic-${b.serial}" data-serial=${b.serial}>
                    <option value="">no clinic</option>
                    ${clinics.map((c) => html`<option value=${c.id} ?selected=${c.id === b.clinicId}>${c.name}</option>`)}
                  </select>
                </td>
                <td>
                  <button @click=${() => void this.approve(b.serial)} aria-label="Approve ${b.serial}">Approve</button>
                  <button @click=${() => void this.reject(b.serial)} aria-label="Reject ${b.serial}">Reject</button>
                </td>
              </tr>`,
            )}
          </tbody>
        </table>
        ${this.claims.length === 0 ? html`<p>No claims waiting.</p>` : nothing}
      </section>

      <section aria-labelledby="reg-h">
        <h2 id="reg-h">Register a box</h2>
        <form aria-label="Register a box" @submit=${(e: SubmitEvent) => void this.register(e)}>
          ${this.regField('serial', 'Serial', { required: true })}
          ${this.regField('claimSecret', 'Claim secret (from the label; empty: approve its claim here)')}
          <div class="field">
            <label for="reg-clinicId">Clinic</label>
            <select id="reg-clinicId" name="clinicId" aria-describedby=${errorId('reg', 'clinicId')}>
              <option value="">no clinic</option>
              ${clinics.map((c) => html`<option value=${c.id}>${c.name}</option>`)}
            </select>
            <span class="field-error" id=${errorId('reg', 'clinicId')}>${this.regErrors['clinicId'] ?? ''}</span>
          </div>
          ${this.regErrors[''] ? html`<p class="error" role="alert">${this.regErrors['']}</p>` : nothing}
          <button type="submit">Register</button>
        </form>
      </section>

      <section aria-labelledby="tpl-h">
        <h2 id="tpl-h">Clinic settings templates</h2>
        <label for="tpl-clinic">Clinic</label>
        <select id="tpl-clinic" @change=${(e: Event) => {
          this.templateClinic = (e.target as HTMLSelectElement).value;
        }}>
          ${clinics.map((c) => html`<option value=${c.id} ?selected=${c.id === this.templateClinic}>${c.name}</option>`)}
        </select>
        ${
          template
            ? html`<settings-form label="Template" prefix="tpl" .strip=${['defaults']}
                .value=${template.boxDefaults ?? null} .save=${this.saveTemplate}
                intro="Settings every box of ${template.name} starts from (a part of the box settings)."></settings-form>`
            : html`<p>No clinics yet.</p>`
        }
      </section>

      <section aria-labelledby="edit-h">
        <h2 id="edit-h">Configuration editor</h2>
        <form class="inline" @submit=${(e: SubmitEvent) => {
          e.preventDefault();
          this.editBox = String(new FormData(e.target as HTMLFormElement).get('box') ?? '').trim();
        }}>
          <label for="edit-box">Box (serial or device id)</label>
          <input id="edit-box" name="box" />
          <button type="submit">Edit</button>
        </form>
        ${this.editBox ? html`<config-editor .box=${this.editBox}></config-editor>` : nothing}
      </section>
    `;
  }
}

customElements.define('provisioning-page', ProvisioningPage);
