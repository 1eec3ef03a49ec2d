/** HTTP clients for the fleet's web server (fleet/web) in tests: a signed-in session and an SSE reader. */
import { waitFor } from '../../shared/wait.js';

export interface WebSession {
  cookie: string;
  csrf: string;
  role: string;
  clinicId: string | null;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  post(path: string, body?: unknown, opts?: { csrf?: boolean }): Promise<Response>;
  del(path: string): Promise<Response>;
}

export async function signIn(base: string, user: string, password: string): Promise<WebSession> {
  const r = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  if (r.status !== 200) throw new Error(`sign-in of ${user} answered ${r.status}: ${await r.text()}`);
  const body = (await r.json()) as { csrfToken: string; role: string; clinicId: string | null };
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] as string;
  return sessionOf(base, cookie, body.csrfToken, body.role, body.clinicId);
}

export function sessionOf(base: string, cookie: string, csrf: string, role = '', clinicId: string | null = null) {
  return {
    cookie,
    csrf,
    role,
    clinicId,
    get: (path: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, { headers: { cookie, ...headers } }),
    post: (path: string, body: unknown = {}, opts: { csrf?: boolean } = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          cookie,
          'content-type': 'application/json',
          ...(opts.csrf === false ? {} : { 'x-csrf-token': csrf }),
        },
        body: JSON.stringify(body),
      }),
    del: (path: string) => fetch(`${base}${path}`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } }),
  };
}

export interface SseMessage {
  id?: string;
  event: string;
  data: unknown;
}

/** Read server-sent events from `path` as they come (stop with close()). */
export async function openSse(base: string, path: string, cookie: string, lastEventId?: string) {
  const ac = new AbortController();
  const r = await fetch(`${base}${path}`, {
    headers: { cookie, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
    signal: ac.signal,
  });
  const messages: SseMessage[] = [];
  const reader = r.body?.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const pump = (async () => {
    if (!reader) return;
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const m: SseMessage = { event: 'message', data: undefined };
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) m.id = line.slice(4);
          else if (line.startsWith('event: ')) m.event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (!data) continue;
        m.data = JSON.parse(data);
        messages.push(m);
      }
    }
  })();
  let ended = false;
  void pump.then(() => {
    ended = true;
  });
  return {
    status: r.status,
    contentType: r.headers.get('content-type'),
    /** Has the server ended the stream? */
    ended: () => ended,
    messages,
    waitFor: (pred: (m: SseMessage) => boolean, what: string) =>
      waitFor(() => messages.find(pred), `SSE message: ${what}`),
    close: async () => {
      ac.abort();
      await pump;
    },
  };
}
