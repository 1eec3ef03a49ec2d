/**
 * The fleet's live stream (server-sent events on /api/v1/live): presence, stored events and alert
 * changes, each with an id. EventSource reconnects by itself and sends the last id it saw
 * (Last-Event-ID), so the fleet resumes where the page left off; when it cannot (the id is too old)
 * it sends `reset` and the pages load again what they show.
 */
export type LiveKind =
  | 'presence'
  | 'event'
  | 'alert'
  | 'calllog'
  | 'telemetry'
  | 'config'
  | 'voicemail'
  | 'reset'
  | string;

export interface LiveMessage {
  kind: LiveKind;
  data: Record<string, unknown>;
}

type Listener = (m: LiveMessage) => void;

const KINDS = [
  'presence',
  'event',
  'events',
  'alert',
  'alerts',
  'calllog',
  'telemetry',
  'config',
  'voicemail',
  'box',
  'reset',
];

class LiveStream {
  private source: EventSource | null = null;
  private readonly listeners = new Set<Listener>();
  connected = false;
  private readonly stateListeners = new Set<(connected: boolean) => void>();

  start(): void {
    if (this.source) return;
    const source = new EventSource('/api/v1/live', { withCredentials: true });
    this.source = source;
    source.onopen = () => this.setConnected(true);
    source.onerror = () => this.setConnected(false);
    const deliver = (kind: string) => (e: MessageEvent<string>) => {
      let data: Record<string, unknown> = {};
      try {
        data = e.data ? (JSON.parse(e.data) as Record<string, unknown>) : {};
      } catch {
        return;
      }
      const m = { kind: kind.replace(/s$/, ''), data };
      for (const fn of this.listeners) fn(m);
    };
    for (const kind of KINDS) source.addEventListener(kind, deliver(kind) as EventListener);
    source.onmessage = (e) => {
      try {
        const d = JSON.parse(e.data) as { kind?: string; type?: string; data?: Record<string, unknown> };
        const kind = d.kind ?? d.type ?? 'message';
        const m = { kind: kind.replace(/s$/, ''), data: d.data ?? (d as Record<string, unknown>) };
        for (const fn of this.listeners) fn(m);
      } catch {
        // not ours
      }
    };
  }

  stop(): void {
    this.source?.close();
    this.source = null;
    this.setConnected(false);
  }

  private setConnected(c: boolean): void {
    if (this.connected === c) return;
    this.connected = c;
    for (const fn of this.stateListeners) fn(c);
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onState(fn: (connected: boolean) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }
}

export const live = new LiveStream();
