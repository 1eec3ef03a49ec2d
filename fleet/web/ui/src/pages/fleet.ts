/**
 * The fleet page: every box with last seen, online state, signal, operator, software version, outbox
 * depth, free disk, configuration drift and open alerts; offline boxes first; counts; filters by state,
 * clinic and text. Live: presence, telemetry and alert changes from the stream update single rows
 * (keyed rows; a row's template is re-evaluated only when its box changed, at most once a frame), so
 * it stays live with thousands of boxes.
 */
import { html, nothing } from 'lit';
import { guard } from 'lit/directives/guard.js';
import { repeat } from 'lit/directives/repeat.js';
import { call } from '../api.js';
import { Page } from '../base.js';
import { clinicList, clinicName, loadClinics } from '../clinics.js';
import { ago, bytes } from '../format.js';
import { type LiveMessage, live } from '../live.js';
import { type Alert, type Box, drift, type TelemetryPoint } from '../model.js';

/** Telemetry older than this is shown greyed (stale), as are the values of an offline box. */
const STALE_MS = 15 * 60_000;

async function allBoxes(): Promise<Box[]> {
  const out: Box[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await call<Box[]>('boxes.list', { limit: 1000, after });
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.serial;
  }
}

async function openAlerts(): Promise<Alert[]> {
  try {
    return await call<Alert[]>('alerts.list', { state: 'active', limit: 1000 });
  } catch {
    return [];
  }
}

class FleetPage extends Page {
  static override properties = {
    state: { state: true },
    clinic: { state: true },
    text: { state: true },
    error: { state: true },
    loaded: { state: true },
  };
  declare state: 'all' | 'online' | 'offline';
  declare clinic: string;
  declare text: string;
  declare error: string;
  declare loaded: boolean;
  /** The boxes by serial; a changed box is a new object, so guard() re-renders only its row. */
  private boxes = new Map<string, Box>();
  private serialOf = new Map<string, string>();
  private alertsByDevice = new Map<string, Set<string>>();
  private tick = 0;
  private frame = 0;
  private unsubscribe: (() => void) | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private refresher: ReturnType<typeof setInterval> | undefined;

  constructor() {
    super();
    this.state = 'all';
    this.clinic = '';
    this.text = '';
    this.error = '';
    this.loaded = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = live.subscribe((m) => this.onLive(m));
    // "3 min ago" moves on: every row's last-seen is re-rendered twice a minute.
    this.timer = setInterval(() => {
      this.tick++;
      this.requestUpdate();
    }, 30_000);
    // Telemetry (signal, outbox, disk) is not on the live stream: the rows are read again every minute, and
    // only the boxes that changed are replaced (so only their rows re-render).
    this.refresher = setInterval(() => void this.refresh(), 60_000);
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
    clearInterval(this.timer);
    clearInterval(this.refresher);
    cancelAnimationFrame(this.frame);
  }

  private async load(): Promise<void> {
    try {
      const [boxes, alerts] = await Promise.all([allBoxes(), openAlerts(), loadClinics()]);
      this.alertsByDevice.clear();
      for (const a of alerts) if (a.deviceId) this.addAlert(a.deviceId, a.id);
      this.boxes = new Map(boxes.map((b) => [b.serial, { ...b, openAlerts: this.alertCount(b.deviceId) }]));
      this.serialOf = new Map(boxes.filter((b) => b.deviceId).map((b) => [b.deviceId!, b.serial]));
      this.error = '';
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
    this.loaded = true;
    this.requestUpdate();
  }

  private async refresh(): Promise<void> {
    let fresh: Box[];
    try {
      fresh = await allBoxes();
    } catch {
      return;
    }
    let changed = false;
    for (const b of fresh) {
      const old = this.boxes.get(b.serial);
      if (
        old &&
        old.updatedAt === b.updatedAt &&
        old.online === b.online &&
        old.telemetry?.at === b.telemetry?.at &&
        old.lastSeenAt === b.lastSeenAt
      ) {
        continue;
      }
      this.boxes.set(b.serial, { ...b, openAlerts: this.alertCount(b.deviceId) });
      if (b.deviceId) this.serialOf.set(b.deviceId, b.serial);
      changed = true;
    }
    if (changed) this.schedule();
  }

  private addAlert(deviceId: string, id: string): void {
    let s = this.alertsByDevice.get(deviceId);
    if (!s) {
      s = new Set();
      this.alertsByDevice.set(deviceId, s);
    }
    s.add(id);
  }

  private alertCount(deviceId: string | null): number {
    return deviceId ? (this.alertsByDevice.get(deviceId)?.size ?? 0) : 0;
  }

  /** Replace one box (a new object) and render at the next frame. */
  private patch(key: string, change: Partial<Box>): void {
    const serial = this.boxes.has(key) ? key : this.serialOf.get(key);
    const b = serial ? this.boxes.get(serial) : undefined;
    if (!b || !serial) return;
    this.boxes.set(serial, { ...b, ...change });
    this.schedule();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.requestUpdate();
    });
  }

  private onLive(m: LiveMessage): void {
    const d = m.data;
    const key = String(d.serial ?? d.deviceId ?? '');
    switch (m.kind) {
      case 'reset':
        void this.load();
        return;
      case 'presence': {
        const change: Partial<Box> = {};
        if (typeof d.online === 'boolean') change.online = d.online;
        const seen = d.lastSeen ?? d.lastSeenAt ?? d.at;
        if (typeof seen === 'string') change.lastSeenAt = seen;
        if (typeof d.firmware === 'string') change.firmware = d.firmware;
        if (!this.boxes.has(key) && !this.serialOf.has(key)) {
          void this.load();
          return;
        }
        this.patch(key, change);
        return;
      }
      case 'telemetry':
        this.patch(key, {
          telemetry: (d.telemetry ?? d) as TelemetryPoint,
          lastSeenAt: typeof d.at === 'string' ? d.at : undefined,
        });
        return;
      case 'box':
      case 'config': {
        const box = (d.box ?? d) as Partial<Box>;
        if (box.serial && !this.boxes.has(box.serial)) {
          void this.load();
          return;
        }
        this.patch(key || String(box.serial), box);
        return;
      }
      case 'alert': {
        const a = d as { alertId?: string; id?: string; deviceId?: string | null; state?: string };
        const id = a.alertId ?? a.id;
        if (!a.deviceId || !id) return;
        if (a.state === 'resolved') this.alertsByDevice.get(a.deviceId)?.delete(id);
        else this.addAlert(a.deviceId, id);
        this.patch(a.deviceId, { openAlerts: this.alertCount(a.deviceId) });
        return;
      }
    }
  }

  private visible(): Box[] {
    const text = this.text.trim().toLowerCase();
    const rows: Box[] = [];
    for (const b of this.boxes.values()) {
      if (b.claimState === 'decommissioned' || b.claimState === 'rejected') continue;
      if (this.state === 'online' && !b.online) continue;
      if (this.state === 'offline' && b.online) continue;
      if (this.clinic && b.clinicId !== this.clinic) continue;
      if (text) {
        const hay =
          `${b.serial} ${b.deviceId ?? ''} ${clinicName(b.clinicId)} ${b.telemetry?.operator ?? ''}`.toLowerCase();
        if (!hay.includes(text)) continue;
      }
      rows.push(b);
    }
    // Offline first, then the longest silent first, then by serial.
    return rows.sort(
      (a, b) =>
        Number(a.online) - Number(b.online) ||
        (a.online ? 0 : (a.lastSeenAt ?? '').localeCompare(b.lastSeenAt ?? '')) ||
        a.serial.localeCompare(b.serial),
    );
  }

  private row(b: Box, now: number) {
    const t = b.telemetry ?? null;
    const stale = !b.online || !t || now - Date.parse(t.at) > STALE_MS;
    const d = drift(b);
    const signal = t?.signalDbm;
    return html`<tr class=${b.online ? 'online' : 'offline'} data-serial=${b.serial}>
      <th scope="row"><a href="/boxes/${encodeURIComponent(b.serial)}">${b.serial}</a></th>
      <td>${clinicName(b.clinicId)}</td>
      <td><span class="pill ${b.online ? 'ok' : 'bad'}">${b.online ? 'online' : 'offline'}</span></td>
      <td title=${b.lastSeenAt ?? ''}>${ago(b.lastSeenAt, now)}</td>
      <td class=${stale ? 'stale' : ''}>${signal === null || signal === undefined ? '—' : `${signal} dBm`}</td>
      <td class=${stale ? 'stale' : ''}>${t?.operator ?? '—'}</td>
      <td class=${stale ? 'stale' : ''}>${t?.softwareVersion ?? b.firmware ?? '—'}</td>
      <td class=${stale ? 'stale' : ''}>${t?.outboxDepth ?? '—'}</td>
      <td class=${stale ? 'stale' : ''}>${bytes(t?.freeDiskBytes)}</td>
      <td><span class="pill ${d === 'in sync' || d === 'none' ? '' : 'warn'}">${d}</span></td>
      <td>${b.openAlerts ? html`<a href="/alerts" class="pill bad">${b.openAlerts}</a>` : '0'}</td>
    </tr>`;
  }

  protected override render() {
    const rows = this.visible();
    let online = 0;
    let total = 0;
    for (const b of this.boxes.values()) {
      if (b.claimState !== 'approved') continue;
      total++;
      if (b.online) online++;
    }
    const now = Date.now();
    const tick = this.tick;
    return html`
      <h1>Fleet</h1>
      <p class="counts" role="status" aria-label="Box counts">
        <span data-count="online">${online} online</span> · <span data-count="offline">${total - online} offline</span>
        · <span data-count="total">${total} total</span>
      </p>
      <form class="filters" role="search" aria-label="Filter boxes" @submit=${(e: Event) => e.preventDefault()}>
        <label for="f-state">State</label>
        <select id="f-state" @change=${(e: Event) => {
          this.state = (e.target as HTMLSelectElement).value as FleetPage['state'];
        }}>
          <option value="all">all</option>
          <option value="offline">offline</option>
          <option value="online">online</option>
        </select>
        <label for="f-clinic">Clinic</label>
        <select id="f-clinic" @change=${(e: Event) => {
          this.clinic = (e.target as HTMLSelectElement).value;
        }}>
          <option value="">all clinics</option>
          ${clinicList().map((c) => html`<option value=${c.id}>${c.name}</option>`)}
        </select>
        <label for="f-text">Search</label>
        <input id="f-text" type="search" placeholder="serial, clinic, operator" @input=${(e: Event) => {
          this.text = (e.target as HTMLInputElement).value;
        }} />
      </form>
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      <table class="boxes">
        <caption>${this.loaded ? `${rows.length} boxes shown` : 'Loading boxes…'}</caption>
        <thead>
          <tr>
            <th scope="col">Box</th><th scope="col">Clinic</th><th scope="col">State</th><th scope="col">Last seen</th>
            <th scope="col">Signal</th><th scope="col">Operator</th><th scope="col">Version</th>
            <th scope="col">Outbox</th><th scope="col">Free disk</th><th scope="col">Config</th>
            <th scope="col">Open alerts</th>
          </tr>
        </thead>
        <tbody>
          ${repeat(
            rows,
            (b) => b.serial,
            (b) => guard([b, tick], () => this.row(b, now)),
          )}
        </tbody>
      </table>
    `;
  }
}

customElements.define('fleet-page', FleetPage);
