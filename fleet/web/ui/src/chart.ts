/**
 * A uPlot chart as an element: `.data` (x values first, then one array per series) and `.series`
 * (labels and colours). Redrawn when either changes; sized to its box. A table of the same numbers
 * sits beside every chart for screen readers (the pages render it).
 */
import { html, type PropertyValues } from 'lit';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { Page } from './base.js';

export interface SeriesSpec {
  label: string;
  color: string;
  /** Draw as bars (counts) rather than a line. */
  bars?: boolean;
  dash?: number[];
}

class UChart extends Page {
  static override properties = {
    data: { attribute: false },
    series: { attribute: false },
    time: { type: Boolean },
    label: { type: String },
  };
  declare data: (number | null)[][];
  declare series: SeriesSpec[];
  declare time: boolean;
  declare label: string;
  private plot: uPlot | null = null;

  constructor() {
    super();
    this.data = [[]];
    this.series = [];
    this.time = true;
    this.label = '';
  }

  protected override render() {
    return html`<div class="chart" role="img" aria-label=${this.label}></div>`;
  }

  protected override updated(changed: PropertyValues): void {
    if (!changed.has('data') && !changed.has('series')) return;
    this.plot?.destroy();
    const el = this.querySelector<HTMLDivElement>('.chart')!;
    const width = Math.max(300, el.clientWidth || 600);
    const bars = uPlot.paths.bars?.({ size: [0.6, 40] });
    this.plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: this.time } },
        series: [
          {},
          ...this.series.map((s) => ({
            label: s.label,
            stroke: s.color,
            fill: s.bars ? `${s.color}55` : undefined,
            width: 2,
            dash: s.dash,
            paths: s.bars ? bars : undefined,
          })),
        ],
        axes: [{}, { size: 50 }],
      },
      this.data as uPlot.AlignedData,
      el,
    );
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.plot?.destroy();
    this.plot = null;
  }
}

customElements.define('u-chart', UChart);
