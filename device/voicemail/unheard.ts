/**
 * The box's list of voicemails nobody has heard yet, in its store (table
 * voicemail_unheard), so the voicemail light survives a restart: a
 * recording is added once it is in the vault (before its event is
 * committed), and removed when the fleet says it was heard (device command
 * voicemail.heard). 'change' carries the count; the light is on while it is
 * above 0. Deleting a recording from the vault after upload does not touch
 * this list: uploaded is not heard.
 */
import { EventEmitter } from 'node:events';
import type { Migration, Queries } from '../store/store.js';

export const VOICEMAIL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'unheard voicemails (the voicemail light)',
    up: 'CREATE TABLE IF NOT EXISTS voicemail_unheard (voicemail_id TEXT PRIMARY KEY, recorded_at TEXT NOT NULL)',
  },
];

export class UnheardVoicemails extends EventEmitter<{ change: [count: number] }> {
  private n = 0;

  constructor(private readonly q: Queries) {
    super();
  }

  get count(): number {
    return this.n;
  }

  /** Read the count from the store (at start). */
  async load(): Promise<number> {
    const row = await this.q.get<{ n: number }>('SELECT COUNT(*) AS n FROM voicemail_unheard');
    this.set(row?.n ?? 0);
    return this.n;
  }

  async add(voicemailId: string, recordedAt: string): Promise<void> {
    await this.q.run('INSERT OR IGNORE INTO voicemail_unheard (voicemail_id, recorded_at) VALUES (?, ?)', [
      voicemailId,
      recordedAt,
    ]);
    await this.load();
  }

  /** The fleet says it was heard: whether it was unheard here, and how many are left. */
  async heard(voicemailId: string): Promise<{ cleared: boolean; unheard: number }> {
    const r = await this.q.run('DELETE FROM voicemail_unheard WHERE voicemail_id = ?', [voicemailId]);
    return { cleared: r.changes > 0, unheard: await this.load() };
  }

  private set(n: number): void {
    if (n === this.n) return;
    this.n = n;
    this.emit('change', n);
  }
}
