/**
 * The configuration editor of one box: its desired settings in a settings form, saved whole with
 * boxes.setConfig (a new version, published to the box); a schema error shows next to its field.
 */
import { html } from 'lit';
import { call } from './api.js';
import { Page } from './base.js';
import './settings-form.js';

interface Desired {
  version: number;
  settings: Record<string, unknown>;
  createdBy: string;
  createdAt: string;
}

class ConfigEditor extends Page {
  static override properties = { box: { type: String }, desired: { state: true }, error: { state: true } };
  declare box: string;
  declare desired: Desired | null;
  declare error: string;
  private loadedFor = '';

  constructor() {
    super();
    this.box = '';
    this.desired = null;
    this.error = '';
  }

  protected override willUpdate(): void {
    if (this.box && this.box !== this.loadedFor) {
      this.loadedFor = this.box;
      void this.load();
    }
  }

  private async load(): Promise<void> {
    try {
      this.desired = await call<Desired | null>('boxes.getConfig', { box: this.box });
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  private readonly save = async (settings: Record<string, unknown>): Promise<string> => {
    const r = await call<{ version: number }>('boxes.setConfig', { box: this.box, settings });
    await this.load();
    return `Saved as version ${r.version}.`;
  };

  protected override render() {
    return html`${this.error ? html`<p class="error" role="alert">${this.error}</p>` : ''}
      <settings-form
        label="Configuration"
        prefix="cfg"
        .value=${this.desired?.settings ?? null}
        .save=${this.save}
        .intro=${
          this.desired
            ? `Desired version ${this.desired.version}, set by ${this.desired.createdBy}.`
            : 'No configuration set yet: the box runs on its clinic defaults.'
        }
      ></settings-form>`;
  }
}

customElements.define('config-editor', ConfigEditor);
