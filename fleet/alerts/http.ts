/**
 * Acknowledge and resolve by link: a fastify plugin the fleet's HTTP server
 * registers (`app.register(alertLinksPlugin, { engine, links })`).
 *
 *   GET  /alerts/link?t=<token>  a small page naming the alert with one button
 *   POST /alerts/link?t=<token>  does what the token says (ack or resolve)
 *
 * A GET never changes anything: mail scanners and chat apps fetch links to
 * preview them, and must not acknowledge a panic nobody has seen. The token
 * is HMAC-signed and expires (fleet/alerts/links.ts); a bad or expired one
 * gets 403 and a plain explanation.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { describeError, ErrorCode, isCallboxError } from '../../shared/errors.js';
import type { NewAuditEntry } from '../store/types.js';
import type { AlertEngine } from './engine.js';
import type { AlertLinks, LinkClaims } from './links.js';

export interface AlertLinksPluginOptions {
  engine: AlertEngine;
  links: AlertLinks;
  /** The fleet's audit log: an acknowledgement or resolution by link is recorded there too. */
  audit?: (entry: NewAuditEntry) => Promise<unknown>;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${esc(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}button{font-size:1.2rem;padding:.6rem 1.2rem}</style></head><body>${body}</body></html>`;
}

export const alertLinksPlugin: FastifyPluginAsync<AlertLinksPluginOptions> = async (
  app: FastifyInstance,
  { engine, links, audit },
) => {
  // The page's button is an HTML form: browsers post it as application/x-www-form-urlencoded (with an empty
  // body), which fastify refuses (415) without a parser. Everything the action needs is in the signed token.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 4096 },
    (_req, _body, done) => done(null, {}),
  );

  const claimsOf = (token: string, reply: FastifyReply): LinkClaims | undefined => {
    try {
      return links.verify(token);
    } catch (e) {
      reply
        .code(403)
        .type('text/html')
        .send(page('Link not valid', `<h1>This link is not valid</h1><p>${esc(describeError(e))}.</p>`));
      return undefined;
    }
  };

  app.get<{ Querystring: { t?: string } }>('/alerts/link', async (req, reply) => {
    const claims = claimsOf(req.query.t ?? '', reply);
    if (!claims) return reply;
    try {
      const { alert } = await engine.get(claims.alertId);
      if (alert.epoch !== claims.epoch && alert.state !== 'resolved') {
        return reply
          .code(403)
          .type('text/html')
          .send(
            page(
              'Link not valid',
              `<h1>This link is out of date</h1><p>Alert ${esc(alert.shortCode)} opened again after this link was sent: use the link in the newest message.</p>`,
            ),
          );
      }
      const verb = claims.action === 'ack' ? 'Acknowledge' : 'Resolve';
      const done =
        alert.state === 'resolved' || (claims.action === 'ack' && alert.state === 'acknowledged')
          ? `<p>This alert is already <strong>${alert.state}</strong>${alert.ackedBy ? ` (by ${esc(alert.ackedBy)})` : ''}.</p>`
          : `<form method="post"><button type="submit">${verb}</button></form>`;
      return reply
        .type('text/html')
        .send(
          page(
            `${verb} alert ${alert.shortCode}`,
            `<h1>${esc(alert.severity)}: ${esc(alert.condition.replace(/_/g, ' '))}</h1><p>${esc(alert.text)}</p><p>Occurrences: ${alert.occurrences}. State: <strong>${alert.state}</strong>.</p>${done}`,
          ),
        );
    } catch (e) {
      const code = isCallboxError(e, ErrorCode.AlertNotFound) ? 404 : 500;
      return reply
        .code(code)
        .type('text/html')
        .send(page('Alert', `<p>${esc(describeError(e))}</p>`));
    }
  });

  app.post<{ Querystring: { t?: string } }>('/alerts/link', async (req, reply) => {
    const claims = claimsOf(req.query.t ?? '', reply);
    if (!claims) return reply;
    try {
      const by = `link:${claims.who}`;
      const alert =
        claims.action === 'ack'
          ? await engine.acknowledge(claims.alertId, by, { epoch: claims.epoch })
          : await engine.resolve(claims.alertId, by, 'link', { epoch: claims.epoch });
      await audit?.({
        actor: by,
        action: claims.action === 'ack' ? 'alerts.ack' : 'alerts.resolve',
        target: `alert:${alert.id}`,
        before: null,
        after: { state: alert.state, via: 'link' },
      });
      return reply
        .type('text/html')
        .send(
          page(
            'Thank you',
            `<h1>Alert ${alert.shortCode} is ${alert.state}</h1><p>${esc(alert.text)}</p>${
              alert.state === 'acknowledged' && alert.ackDeadline
                ? `<p>Resolve it before ${esc(alert.ackDeadline)} or it opens again.</p>`
                : ''
            }`,
          ),
        );
    } catch (e) {
      const code = isCallboxError(e, ErrorCode.AlertNotFound)
        ? 404
        : isCallboxError(e, ErrorCode.NotAuthorized)
          ? 403
          : 500;
      return reply
        .code(code)
        .type('text/html')
        .send(page('Alert', `<p>${esc(describeError(e))}</p>`));
    }
  });
};
