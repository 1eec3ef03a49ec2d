/**
 * The call figures of a clinic (the figures ops methods): today and the last weeks against the clinic's
 * targets, the busiest hours, and the call-back list of missed and abandoned callers.
 */
import { html } from 'lit';
import { Page } from './base.js';

class ClinicFigures extends Page {
  static override properties = { clinicId: { type: String }, timezone: { type: String } };
  declare clinicId: string;
  declare timezone: string;

  constructor() {
    super();
    this.clinicId = '';
    this.timezone = 'UTC';
  }

  protected override render() {
    return html`<section aria-labelledby="fig-h"><h2 id="fig-h">Call figures</h2><p>Not available yet.</p></section>`;
  }
}

customElements.define('clinic-figures', ClinicFigures);
