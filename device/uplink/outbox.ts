/**
 * The durable outbox: the EventSink every feature module records into.
 *
 * - record() validates the body, then the event joins the next group
 *   commit (one multi-row INSERT and the sequence counter in one
 *   transaction); the promise resolves only after COMMIT, so an event whose
 *   record() resolved survives a power cut (see device/store/store.ts).
 * - seq is given at commit time in record() order, +1 per event and kept in
 *   meta.last_seq across reboots; a failed commit gives out no numbers.
 * - The pump publishes committed events in seq order through a Sender (the
 *   MQTT link, QoS 1) as EventBatch messages (shared/contract/delivery.ts):
 *   up to publishBatch events and batchMaxBytes per message, at most
 *   batchesInFlight messages without a receipt. A backlog therefore travels
 *   in a few large messages, not one message per event.
 * - A row is deleted only when the fleet's Receipt covers it (onReceipt):
 *   the fleet has committed it. The broker's PUBACK proves nothing (a
 *   broker or fleet can die holding it in memory).
 * - Unreceipted events are sent again from the oldest stored row when the
 *   link comes back (or the box restarts), and when no receipt came for
 *   receiptTimeoutMs (doubling while the fleet stays silent, up to
 *   receiptTimeoutMaxMs, so an outage is not a storm): at least once, in
 *   order; the fleet applies each id once and receipts duplicates too.
 *
 * Bound (outbox.maxEvents undelivered rows), policy when full:
 * - panic.* and voicemail.* (class 2) are never dropped nor refused: they
 *   go over the bound (only the disk limits them);
 * - state events (modem.state, forwarding.state per reason; class 0) are
 *   coalesced: a new one deletes the undelivered older ones of its kind,
 *   only the newest state matters;
 * - anything else (calls, class 1) is refused with StoreFull: the producer
 *   knows it was not recorded (nothing acknowledged is ever dropped).
 * Disk nearly full (free < outbox.minFreeMb): only class 2 is accepted.
 */
import { statfs } from 'node:fs/promises';
import { background } from '../../shared/background.js';
import { backoffDelay } from '../../shared/backoff.js';
import { EVENT_BODIES, type EventBody, type EventType } from '../../shared/contract/events.js';
import { CallboxError, ErrorCode } from '../../shared/errors.js';
import { newEventId, newBootId as newStreamId, UUID_PATTERN } from '../../shared/ids.js';
import { getLogger, type Logger } from '../../shared/log.js';
import { validate } from '../../shared/validate.js';
import type { EventSink, RecordedEvent, RecordOptions } from '../events.js';
import type { Store } from '../store/store.js';

export enum EventClass {
  Coalescable = 0,
  Normal = 1,
  Critical = 2,
}

/** The class of an event type and, for coalescable ones, what supersedes what. */
export function classify(type: EventType, body: unknown): { cls: EventClass; key: string | null } {
  if (type.startsWith('panic.') || type.startsWith('voicemail.')) return { cls: EventClass.Critical, key: null };
  if (type === 'modem.state') return { cls: EventClass.Coalescable, key: type };
  if (type === 'forwarding.state') {
    return { cls: EventClass.Coalescable, key: `${type}:${(body as { reason: string }).reason}` };
  }
  return { cls: EventClass.Normal, key: null };
}

/**
 * Where the pump publishes: the link while online. send() resolves on the
 * broker's acknowledgement, which is transport only: rows are deleted on
 * the fleet's receipt (onReceipt), never on a PUBACK.
 */
export interface Sender {
  deviceId: string;
  /** `lastSeq`: the seq of the last event in the batch. */
  send(payload: string, lastSeq: number): Promise<void>;
}

export interface OutboxOptions {
  bootId: string;
  maxEvents: number;
  /** Events in one message at most (a batch). */
  publishBatch: number;
  /** Bytes in one message at most (default 64 KiB; one event is always sent, whatever its size). */
  batchMaxBytes?: number;
  /** Batches sent and not yet receipted at once (default 4). */
  batchesInFlight?: number;
  /** No receipt for this long: send the unreceipted events again (ms, default 15 s; doubles while silent). */
  receiptTimeoutMs?: number;
  /** Longest wait between resends while the fleet stays silent (ms, default 5 min). */
  receiptTimeoutMaxMs?: number;
  /** Free disk below which only critical events are accepted (bytes). */
  minFreeBytes: number;
  flushDelayMs?: number;
  /** Check free disk at most this often (ms; default 1000), at every commit once below the limit. */
  diskCheckMs?: number;
  /** Free bytes on the store's file system (tests inject a stand-in). */
  freeBytes?: () => Promise<number>;
  /** Directory for the default freeBytes. */
  dataDir?: string;
  log?: Logger;
}

interface Pending {
  id: string;
  /** The producer named the id (it may be stored already: see commit()). */
  given: boolean;
  type: EventType;
  body: string;
  at: string;
  cls: EventClass;
  key: string | null;
  resolve: (r: RecordedEvent) => void;
  reject: (e: unknown) => void;
}

interface Row {
  seq: number;
  id: string;
  type: string;
  at: string;
  boot_id: string;
  body: string;
}

const MAX_ROWS_PER_INSERT = 400;
const UUID_RE = new RegExp(UUID_PATTERN);

export class Outbox implements EventSink {
  private lastSeq = 0;
  private depthCount = 0;
  private pending: Pending[] = [];
  private flushing = false;
  /** The commit run in flight (or the last one). */
  private flushRun: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private sender: Sender | undefined;
  private generation = 0;
  /** Id of this outbox (meta.stream): receipts name it. */
  private stream = '';
  /** Highest seq the fleet receipted (rows up to it are deleted or being deleted). */
  private receipted = 0;
  /** Last seq sent in the current round; -1: the round starts at the oldest stored row. */
  private sentUpTo = -1;
  /** The box held no row at or below this when the current round started. */
  private roundFloor = 0;
  /** Last seq of each batch sent and not yet receipted, in order. */
  private inFlight: number[] = [];
  private pumping = false;
  private pumpAgain = false;
  private receiptTimer: NodeJS.Timeout | undefined;
  /** Receipt timeouts in a row (the wait doubles per timeout while the fleet stays silent). */
  private receiptTimeouts = 0;
  private readonly receiptTimeoutMs: number;
  private readonly receiptTimeoutMaxMs: number;
  private readonly batchMaxBytes: number;
  private readonly batchesInFlight: number;
  private deleteChain: Promise<void> = Promise.resolve();
  private sentBatches = 0;
  private resends = 0;
  private diskLow = false;
  private diskChecked = 0;
  private closed = false;
  private readonly log: Logger;
  private readonly drainWaiters: (() => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly opts: OutboxOptions,
  ) {
    this.log = opts.log ?? getLogger('device:uplink:outbox');
    this.receiptTimeoutMs = opts.receiptTimeoutMs ?? 15_000;
    this.receiptTimeoutMaxMs = Math.max(this.receiptTimeoutMs, opts.receiptTimeoutMaxMs ?? 300_000);
    this.batchMaxBytes = opts.batchMaxBytes ?? 65_536;
    this.batchesInFlight = opts.batchesInFlight ?? 4;
  }

  async open(): Promise<void> {
    const meta = await this.store.get<{ value: string }>("SELECT value FROM meta WHERE key = 'last_seq'");
    const max = await this.store.get<{ m: number | null; n: number }>(
      'SELECT MAX(seq) AS m, COUNT(*) AS n FROM events',
    );
    this.lastSeq = Math.max(Number(meta?.value ?? 0), max?.m ?? 0);
    this.depthCount = max?.n ?? 0;
    const stream = await this.store.get<{ value: string }>("SELECT value FROM meta WHERE key = 'stream'");
    if (stream) this.stream = stream.value;
    else {
      // A new outbox (first start, or a store set aside as corrupt): its own stream, so no old receipt applies.
      this.stream = newStreamId();
      await this.store.run("INSERT INTO meta (key, value) VALUES ('stream', ?)", [this.stream]);
    }
    await this.checkDisk(true);
    this.log.info({ depth: this.depthCount, lastSeq: this.lastSeq }, 'outbox opened');
  }

  /** Events stored and not yet acknowledged by the broker. */
  get depth(): number {
    return this.depthCount;
  }

  /** The last sequence number given out. */
  get seq(): number {
    return this.lastSeq;
  }

  record<K extends EventType>(
    type: K,
    body: EventBody<K>,
    at: Date = new Date(),
    opts: RecordOptions = {},
  ): Promise<RecordedEvent> {
    if (this.closed) {
      return Promise.reject(new CallboxError(ErrorCode.ShuttingDown, `event ${type} not recorded: shutting down`));
    }
    const schema = EVENT_BODIES[type];
    if (!schema) {
      return Promise.reject(new CallboxError(ErrorCode.ValidationFailed, `unknown event type ${JSON.stringify(type)}`));
    }
    try {
      validate(schema, body, `event ${type}`);
    } catch (e) {
      return Promise.reject(e);
    }
    if (opts.id !== undefined && !UUID_RE.test(opts.id)) {
      return Promise.reject(
        new CallboxError(ErrorCode.ValidationFailed, `event ${type}: id ${JSON.stringify(opts.id)} is not a UUID`),
      );
    }
    const { cls, key } = classify(type, body);
    return new Promise<RecordedEvent>((resolve, reject) => {
      this.pending.push({
        id: opts.id ?? newEventId(),
        given: opts.id !== undefined,
        type,
        body: JSON.stringify(body),
        at: at.toISOString(),
        cls,
        key,
        resolve,
        reject,
      });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushTimer) return;
    const delay = this.opts.flushDelayMs ?? 2;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      background(this.flush(), this.log, 'outbox commit');
    }, delay);
  }

  /** Commit what is pending; while a run is in flight, its promise (close() waits on it). */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushRun;
    this.flushing = true;
    this.flushRun = this.flushPending();
    return this.flushRun;
  }

  private async flushPending(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_ROWS_PER_INSERT);
        await this.commit(batch);
      }
    } finally {
      this.flushing = false;
    }
    if (this.pending.length > 0) this.scheduleFlush();
  }

  private async commit(batch: Pending[]): Promise<void> {
    await this.checkDisk(false);
    const accepted: Pending[] = [];
    const coalesce = new Set<string>();
    let depth = this.depthCount;
    for (const p of batch) {
      if (this.diskLow && p.cls !== EventClass.Critical) {
        p.reject(
          new CallboxError(
            ErrorCode.StoreFull,
            `event ${p.type} not recorded: less than ${Math.round(this.opts.minFreeBytes / 2 ** 20)} MiB free on disk; only panic and voicemail events are kept`,
          ),
        );
        continue;
      }
      if (p.cls === EventClass.Coalescable && p.key) {
        // Full: a newer state supersedes the stored undelivered ones of the same kind.
        if (depth >= this.opts.maxEvents) coalesce.add(p.key);
      } else if (p.cls === EventClass.Normal && depth >= this.opts.maxEvents) {
        p.reject(
          new CallboxError(
            ErrorCode.StoreFull,
            `event ${p.type} not recorded: the outbox holds ${depth} undelivered events (outbox.maxEvents ${this.opts.maxEvents})`,
            { depth, maxEvents: this.opts.maxEvents },
          ),
        );
        continue;
      }
      accepted.push(p);
      depth++;
    }
    if (accepted.length === 0) return;
    if (accepted.some((p) => p.given)) {
      // A producer-named id that is still stored (or twice in this batch) is that event, not a new one.
      const named = accepted.filter((p) => p.given).map((p) => p.id);
      const stored = new Map<string, number>();
      try {
        const rows = await this.store.all<{ id: string; seq: number }>(
          `SELECT id, seq FROM events WHERE id IN (${named.map(() => '?').join(',')})`,
          named,
        );
        for (const r of rows) stored.set(r.id, r.seq);
      } catch (e) {
        const err = new CallboxError(ErrorCode.StoreUnavailable, `outbox commit failed: ${String(e)}`);
        for (const p of accepted) p.reject(err);
        return;
      }
      const fresh: Pending[] = [];
      const waiting = new Map<string, Pending[]>();
      for (const p of accepted) {
        const seq = stored.get(p.id);
        if (seq !== undefined) p.resolve({ id: p.id, seq });
        else if (p.given && waiting.has(p.id)) waiting.get(p.id)?.push(p);
        else {
          if (p.given) waiting.set(p.id, []);
          fresh.push(p);
        }
      }
      for (const [id, dups] of waiting) {
        const first = fresh.find((p) => p.id === id) as Pending;
        const { resolve, reject } = first;
        first.resolve = (r) => {
          resolve(r);
          for (const d of dups) d.resolve(r);
        };
        first.reject = (e) => {
          reject(e);
          for (const d of dups) d.reject(e);
        };
      }
      accepted.length = 0;
      accepted.push(...fresh);
      if (accepted.length === 0) return;
    }
    const first = this.lastSeq + 1;
    const last = this.lastSeq + accepted.length;
    let removed = 0;
    try {
      await this.store.transaction(async (tx) => {
        if (coalesce.size > 0) {
          const keys = [...coalesce];
          const r = await tx.run(`DELETE FROM events WHERE coalesce_key IN (${keys.map(() => '?').join(',')})`, keys);
          removed = r.changes;
        }
        const params: unknown[] = [];
        accepted.forEach((p, i) => {
          params.push(first + i, p.id, p.type, p.cls, p.key, p.at, this.opts.bootId, p.body);
        });
        await tx.run(
          `INSERT INTO events (seq, id, type, class, coalesce_key, at, boot_id, body) VALUES ${accepted
            .map(() => '(?,?,?,?,?,?,?,?)')
            .join(',')}`,
          params,
        );
        await tx.run(
          "INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          [String(last)],
        );
      });
    } catch (e) {
      const err =
        e instanceof CallboxError
          ? e
          : new CallboxError(ErrorCode.StoreUnavailable, `outbox commit failed: ${String(e)}`);
      this.log.error({ err, events: accepted.length }, 'outbox commit failed; events refused');
      for (const p of accepted) p.reject(err);
      return;
    }
    this.lastSeq = last;
    this.depthCount += accepted.length - removed;
    if (removed > 0) this.log.info({ removed, keys: [...coalesce] }, 'outbox full: coalesced superseded state events');
    accepted.forEach((p, i) => {
      p.resolve({ id: p.id, seq: first + i });
    });
    this.kick();
  }

  private async checkDisk(force: boolean): Promise<void> {
    const now = Date.now();
    // statfs is cheap but not free: every second at most, every commit when close to the limit.
    if (!force && !this.diskLow && now - this.diskChecked < (this.opts.diskCheckMs ?? 1000)) return;
    this.diskChecked = now;
    let free: number;
    try {
      free = this.opts.freeBytes
        ? await this.opts.freeBytes()
        : await statfs(this.opts.dataDir ?? '.').then((s) => s.bavail * s.bsize);
    } catch {
      return;
    }
    const low = free < this.opts.minFreeBytes;
    if (low !== this.diskLow) {
      if (low) this.log.warn({ freeBytes: free }, 'disk nearly full: only panic and voicemail events accepted');
      else this.log.info({ freeBytes: free }, 'disk space back: accepting all events');
    }
    this.diskLow = low;
  }

  // ---- publishing ------------------------------------------------------------------

  /** Start publishing through `sender` (the link is online). Replays from the oldest stored event. */
  attach(sender: Sender): void {
    this.sender = sender;
    this.restartRound();
  }

  /** Stop publishing (the link went down); unreceipted events stay stored and are sent again later. */
  detach(): void {
    this.sender = undefined;
    this.generation++;
    this.inFlight = [];
    clearTimeout(this.receiptTimer);
    this.receiptTimer = undefined;
  }

  /** Send everything unreceipted again, from the oldest stored event (reconnect, receipt timeout). */
  private restartRound(): void {
    this.generation++;
    this.inFlight = [];
    this.sentUpTo = -1;
    clearTimeout(this.receiptTimer);
    this.receiptTimer = undefined;
    this.kick();
  }

  private kick(): void {
    if (!this.sender || this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    const gen = this.generation;
    try {
      do {
        this.pumpAgain = false;
        while (this.sender && gen === this.generation && this.inFlight.length < this.batchesInFlight) {
          if (this.sentUpTo < 0) {
            // A new round starts at the oldest stored event: everything below it is receipted or superseded.
            // lastSeq is read before the query: a commit finishing meanwhile adds rows above it, not below
            // (taking lastSeq after the await claimed rows never sent as held by nobody: found by the
            // SIGKILL fault injection).
            const lastBefore = this.lastSeq;
            const min = await this.store.get<{ m: number | null }>('SELECT MIN(seq) AS m FROM events');
            if (gen !== this.generation) return;
            this.sentUpTo = Math.max(this.receipted, min?.m != null ? min.m - 1 : lastBefore);
            this.roundFloor = this.sentUpTo;
          }
          const committedBefore = this.lastSeq;
          if (this.sentUpTo >= committedBefore) break;
          const read = await this.store.all<Row>(
            'SELECT seq, id, type, at, boot_id, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
            [this.sentUpTo, this.opts.publishBatch],
          );
          if (gen !== this.generation || !this.sender) return;
          // A receipt that landed during the read may have moved sentUpTo past some of these rows (the fleet has
          // them): a batch must start above its own `after`, or the fleet refuses it whole (found by the SIGKILL
          // fault injection on a loaded machine).
          const upTo = this.sentUpTo;
          const rows = read.filter((r) => r.seq > upTo);
          if (rows.length === 0 && read.length > 0) continue;
          if (rows.length === 0) {
            // Not lastSeq now: rows committed during the read are above committedBefore and still to send.
            this.sentUpTo = Math.max(this.sentUpTo, committedBefore);
            break;
          }
          this.sendBatch(this.sender, rows, gen);
        }
      } while (this.pumpAgain && gen === this.generation);
    } catch (e) {
      this.log.error({ err: e }, 'outbox pump failed; retrying on the next event, receipt or reconnect');
    } finally {
      this.pumping = false;
      // Work arrived while this run was finishing, or the link came back mid-read: run again.
      if (this.sender && (this.pumpAgain || gen !== this.generation)) this.kick();
    }
  }

  /** One message: consecutive rows after sentUpTo, bounded in count (read) and bytes (here). */
  private sendBatch(sender: Sender, rows: Row[], gen: number): void {
    const after = this.sentUpTo;
    // Nothing at or below floor is held: it was receipted, or below the oldest row when the round started.
    const floor = Math.min(after, Math.max(this.receipted, this.roundFloor));
    const parts: string[] = [];
    let bytes = 200;
    let last = after;
    for (const row of rows) {
      const e = `{"v":1,"id":"${row.id}","deviceId":"${sender.deviceId}","bootId":"${row.boot_id}","seq":${row.seq},"at":"${row.at}","type":"${row.type}","body":${row.body}}`;
      if (parts.length > 0 && bytes + e.length + 1 > this.batchMaxBytes) break;
      parts.push(e);
      bytes += e.length + 1;
      last = row.seq;
    }
    const payload = `{"v":1,"deviceId":"${sender.deviceId}","stream":"${this.stream}","floor":${floor},"after":${after},"events":[${parts.join(',')}]}`;
    this.sentUpTo = last;
    this.inFlight.push(last);
    this.sentBatches++;
    this.armReceiptTimer();
    sender.send(payload, last).catch(() => {
      // Not even the broker took it (link down): the next attach() or the receipt timeout sends it again.
      if (gen === this.generation) this.log.debug({ last }, 'batch not published');
    });
  }

  /** How long to wait for a receipt now: receiptTimeoutMs doubling per silent timeout, up to receiptTimeoutMaxMs. */
  private get receiptWaitMs(): number {
    return backoffDelay(this.receiptTimeouts, { initial: this.receiptTimeoutMs, max: this.receiptTimeoutMaxMs });
  }

  private armReceiptTimer(): void {
    if (this.receiptTimer) return;
    this.receiptTimer = setTimeout(() => {
      this.receiptTimer = undefined;
      if (!this.sender || this.inFlight.length === 0) return;
      this.log.warn(
        { unreceipted: this.inFlight.length, upTo: this.sentUpTo, waitedMs: this.receiptWaitMs },
        'no receipt from the fleet: sending the unreceipted events again',
      );
      this.resends++;
      // Back off while the fleet stays silent, so that an outage is not a storm of resends.
      this.receiptTimeouts++;
      this.restartRound();
    }, this.receiptWaitMs);
    this.receiptTimer.unref?.();
  }

  /**
   * A receipt from the fleet: every event of `stream` up to `seq` is stored.
   * Only now are those rows deleted. Receipts for another stream (an older
   * outbox of this box) are ignored.
   */
  onReceipt(receipt: { stream: string; seq: number }): Promise<void> {
    if (receipt.stream !== this.stream) {
      this.log.debug({ stream: receipt.stream }, 'receipt for another outbox stream ignored');
      return this.deleteChain;
    }
    if (receipt.seq <= this.receipted) return this.deleteChain;
    const seq = Math.min(receipt.seq, this.lastSeq);
    this.receipted = seq;
    this.inFlight = this.inFlight.filter((last) => last > seq);
    if (this.sentUpTo >= 0 && this.sentUpTo < seq) this.sentUpTo = seq;
    this.receiptTimeouts = 0;
    clearTimeout(this.receiptTimer);
    this.receiptTimer = undefined;
    if (this.inFlight.length > 0) this.armReceiptTimer();
    this.deleteChain = this.deleteChain.then(async () => {
      try {
        const r = await this.store.run('DELETE FROM events WHERE seq <= ?', [seq]);
        this.depthCount -= r.changes;
        if (this.depthCount <= 0) this.notifyDrained();
      } catch (e) {
        // Rows stay; they are sent again and receipted again (the fleet dedups by id).
        this.log.warn({ err: e }, 'could not forget receipted events');
      }
    });
    this.kick();
    return this.deleteChain;
  }

  /** Figures for telemetry and tests. */
  get delivery(): { stream: string; receipted: number; sentBatches: number; resends: number } {
    return { stream: this.stream, receipted: this.receipted, sentBatches: this.sentBatches, resends: this.resends };
  }

  private notifyDrained(): void {
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves when every stored event has been receipted by the fleet (tests, shutdown, benchmarks). */
  async drained(): Promise<void> {
    for (;;) {
      await this.deleteChain;
      if (this.depthCount <= 0 && this.pending.length === 0 && !this.flushing) return;
      await new Promise<void>((resolve) => {
        this.drainWaiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Commit what producers already handed in, record acknowledgements, stop. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // Waits on the run in flight (no polling); its failure is the timer's to report (background()).
    while (this.flushing || this.pending.length > 0) {
      if (this.flushing) await this.flushRun.catch(() => undefined);
      else await this.flush();
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    this.closed = true;
    this.detach();
    await this.deleteChain;
  }
}
