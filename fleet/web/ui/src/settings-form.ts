/**
 * A settings form: every leaf of a settings object as a labelled input (numbers, text, switches; lists
 * and tables as JSON), saved whole by the page's `save`. An error from the fleet is shown next to the
 * field it names (fields.ts); nothing is saved then. The box configuration editor (boxes.setConfig) and
 * the clinic alert settings (rules, escalation steps, contacts: alerts.settings.set) are such forms.
 */
import { html, nothing } from 'lit';
import { Page } from './base.js';
import { errorId, type FieldErrors, fieldErrors } from './fields.js';

type Leaf = { path: string; kind: 'number' | 'boolean' | 'string' | 'json'; value: unknown };

function flatten(obj: Record<string, unknown>, prefix = ''): Leaf[] {
  const out: Leaf[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      out.push(...flatten(v as Record<string, unknown>, path));
    } else if (typeof v === 'number') out.push({ path, kind: 'number', value: v });
    else if (typeof v === 'boolean') out.push({ path, kind: 'boolean', value: v });
    else if (typeof v === 'string') out.push({ path, kind: 'string', value: v });
    else out.push({ path, kind: 'json', value: v });
  }
  return out;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof o[p] !== 'object' || o[p] === null) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]!] = value;
}

class SettingsForm extends Page {
  static override properties = {
    value: { attribute: false },
    save: { attribute: false },
    strip: { attribute: false },
    label: { type: String },
    prefix: { type: String },
    intro: { type: String },
    errors: { state: true },
    saved: { state: true },
    busy: { state: true },
  };
  /** The settings shown (null: none yet; a JSON box then). */
  declare value: Record<string, unknown> | null;
  /** Saves the settings; resolves with what to say (e.g. the new version). */
  declare save: (settings: Record<string, unknown>) => Promise<string>;
  /** Leading parts of an error's field path that are not in the settings (e.g. "settings"). */
  declare strip: string[];
  declare label: string;
  /** Prefix of the inputs' ids (unique on the page). */
  declare prefix: string;
  declare intro: string;
  declare errors: FieldErrors;
  declare saved: string;
  declare busy: boolean;

  constructor() {
    super();
    this.value = null;
    this.save = async () => '';
    this.strip = ['settings', 'body'];
    this.label = 'Settings';
    this.prefix = 'set';
    this.intro = '';
    this.errors = {};
    this.saved = '';
    this.busy = false;
  }

  private async submit(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const leaves = flatten(this.value ?? {});
    const settings: Record<string, unknown> = {};
    const local: FieldErrors = {};
    for (const leaf of leaves) {
      const input = form.elements.namedItem(leaf.path) as HTMLInputElement | HTMLTextAreaElement | null;
      if (!input) continue;
      if (leaf.kind === 'boolean') setPath(settings, leaf.path, (input as HTMLInputElement).checked);
      else if (leaf.kind === 'number') {
        const n = input.value.trim() === '' ? Number.NaN : Number(input.value);
        setPath(settings, leaf.path, Number.isFinite(n) ? n : input.value);
      } else if (leaf.kind === 'json') {
        try {
          setPath(settings, leaf.path, JSON.parse(input.value));
        } catch (err) {
          local[leaf.path] = `not JSON: ${(err as Error).message}`;
        }
      } else setPath(settings, leaf.path, input.value);
    }
    if (leaves.length === 0) {
      const raw = form.elements.namedItem('__json') as HTMLTextAreaElement | null;
      try {
        Object.assign(settings, JSON.parse(raw?.value || '{}'));
      } catch (err) {
        local['__json'] = `not JSON: ${(err as Error).message}`;
      }
    }
    if (Object.keys(local).length > 0) {
      this.errors = local;
      return;
    }
    this.busy = true;
    this.saved = '';
    try {
      this.saved = await this.save(settings);
      this.errors = {};
    } catch (err) {
      this.errors = fieldErrors(
        err,
        leaves.map((l) => l.path),
        this.strip,
      );
    } finally {
      this.busy = false;
    }
  }

  private input(leaf: Leaf) {
    const id = `${this.prefix}-${leaf.path.replace(/\./g, '-')}`;
    const err = this.errors[leaf.path];
    const eid = errorId(this.prefix, leaf.path);
    const invalid = err ? 'true' : 'false';
    let control: unknown;
    if (leaf.kind === 'boolean') {
      control = html`<input type="checkbox" id=${id} name=${leaf.path} ?checked=${leaf.value === true}
        aria-invalid=${invalid} aria-describedby=${eid} />`;
    } else if (leaf.kind === 'json') {
      control = html`<textarea id=${id} name=${leaf.path} rows="2" aria-invalid=${invalid}
        aria-describedby=${eid} .value=${JSON.stringify(leaf.value)}></textarea>`;
    } else {
      control = html`<input type="text" inputmode=${leaf.kind === 'number' ? 'decimal' : 'text'}
        id=${id} name=${leaf.path} .value=${String(leaf.value)} aria-invalid=${invalid} aria-describedby=${eid} />`;
    }
    return html`<div class="field ${err ? 'has-error' : ''}">
      <label for=${id}>${leaf.path}</label>
      ${control}
      <span class="field-error" id=${eid}>${err ?? ''}</span>
    </div>`;
  }

  protected override render() {
    const leaves = flatten(this.value ?? {});
    const general = this.errors[''];
    const jsonId = `${this.prefix}-json`;
    return html`
      <form class="settings" aria-label=${this.label} @submit=${(e: SubmitEvent) => void this.submit(e)}>
        ${this.intro ? html`<p>${this.intro}</p>` : nothing}
        ${
          leaves.length > 0
            ? leaves.map((l) => this.input(l))
            : html`<div class="field">
              <label for=${jsonId}>${this.label} (JSON)</label>
              <textarea id=${jsonId} name="__json" rows="6" aria-describedby=${errorId(this.prefix, '__json')}>{}</textarea>
              <span class="field-error" id=${errorId(this.prefix, '__json')}>${this.errors['__json'] ?? ''}</span>
            </div>`
        }
        ${general ? html`<p class="error" role="alert">${general}</p>` : nothing}
        <button type="submit" ?disabled=${this.busy}>Save ${this.label.toLowerCase()}</button>
        <span role="status">${this.saved}</span>
      </form>
    `;
  }
}

customElements.define('settings-form', SettingsForm);
