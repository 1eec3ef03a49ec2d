/**
 * A FHIR R4 stand-in for tests and the demo: a real HTTP server (node:http)
 * that answers the one search the fleet makes,
 *   GET /Patient?phone=<number>  (Authorization: Bearer <token>)
 * with a searchset Bundle of the fixture patients whose telecom phone is that
 * number (an empty Bundle for an unknown number), 401 with an
 * OperationOutcome for a missing or wrong token, 404 for anything else.
 * Knobs: `down()` closes the port (connection refused) until `up()`, which
 * listens on the same port again; `delayMs` holds every answer that long
 * (a slow server). `requests` records what was asked (path and whether the
 * token was right), so a test can check the fleet's request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FixturePatient {
  id: string;
  phone: string;
  given: string[];
  family: string;
  birthDate: string;
  /** Extra names (e.g. a maiden name, use "old") listed before the official one. */
  otherNames?: { use: string; given: string[]; family: string }[];
}

export interface FhirStandIn {
  /** The FHIR base URL (http://127.0.0.1:<port>). */
  url: string;
  token: string;
  patients: FixturePatient[];
  /** Hold every answer this long. */
  delayMs: number;
  readonly requests: { path: string; authorized: boolean; accept: string | undefined }[];
  /** Answers sent so far (a slow one counts once it is sent). */
  answered: number;
  /** The most requests it held at once (a slow server shows the client's concurrency). */
  maxInFlight: number;
  /** Stop listening (connection refused) until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Two patients the demo and tests know, and a number two patients share (a family phone). */
export const DEMO_PATIENTS: FixturePatient[] = [
  { id: 'pat-ada', phone: '+15551230001', given: ['Ada'], family: 'Lovelace', birthDate: '1985-12-10' },
  {
    id: 'pat-grace',
    phone: '+15551230002',
    given: ['Grace', 'Brewster'],
    family: 'Hopper',
    birthDate: '1976-12-09',
    otherNames: [{ use: 'old', given: ['Grace'], family: 'Murray' }],
  },
  { id: 'pat-tom', phone: '+15551230003', given: ['Tom'], family: 'Kilburn', birthDate: '2012-08-11' },
  { id: 'pat-tess', phone: '+15551230003', given: ['Tess'], family: 'Kilburn', birthDate: '2015-02-27' },
];

function patientResource(p: FixturePatient) {
  return {
    resourceType: 'Patient',
    id: p.id,
    name: [
      ...(p.otherNames ?? []).map((n) => ({ use: n.use, family: n.family, given: n.given })),
      { use: 'official', family: p.family, given: p.given },
    ],
    telecom: [{ system: 'phone', value: p.phone, use: 'mobile' }],
    birthDate: p.birthDate,
  };
}

function outcome(code: string, text: string) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: text }] };
}

export async function startFhirStandIn(
  opts: { token?: string; patients?: FixturePatient[]; delayMs?: number; host?: string; port?: number } = {},
): Promise<FhirStandIn> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let server: Server | undefined;
  let port = opts.port ?? 0;
  let inFlight = 0;

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    s.answered++;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://stand-in');
    const authorized = req.headers.authorization === `Bearer ${s.token}`;
    s.requests.push({ path: `${u.pathname}${u.search}`, authorized, accept: req.headers.accept });
    inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    const answer = () => {
      if (!authorized) return send(res, 401, outcome('login', 'a valid bearer token is required'));
      if (req.method !== 'GET' || u.pathname.replace(/\/+$/, '') !== '/Patient') {
        return send(res, 404, outcome('not-supported', `only GET /Patient?phone= is served here`));
      }
      const phone = u.searchParams.get('phone');
      const found = phone === null ? [] : s.patients.filter((p) => p.phone === phone);
      send(res, 200, {
        resourceType: 'Bundle',
        type: 'searchset',
        total: found.length,
        link: [{ relation: 'self', url: `${s.url}${u.pathname}${u.search}` }],
        entry: found.map((p) => ({
          fullUrl: `${s.url}/Patient/${p.id}`,
          resource: patientResource(p),
          search: { mode: 'match' },
        })),
      });
    };
    if (s.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        if (!res.destroyed) answer();
      }, s.delayMs);
      timers.add(t);
    } else answer();
  };

  const listen = async () => {
    const srv = createServer(handle);
    srv.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => resolve());
    });
    port = (srv.address() as AddressInfo).port;
    server = srv;
  };

  const stop = async () => {
    const srv = server;
    server = undefined;
    if (!srv) return;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  };

  await listen();
  const s: FhirStandIn = {
    url: `http://${host}:${port}`,
    token: opts.token ?? 'stand-in-token',
    patients: opts.patients ?? DEMO_PATIENTS,
    delayMs: opts.delayMs ?? 0,
    requests: [],
    answered: 0,
    maxInFlight: 0,
    down: stop,
    up: async () => {
      if (!server) await listen();
    },
    close: stop,
  };
  return s;
}
