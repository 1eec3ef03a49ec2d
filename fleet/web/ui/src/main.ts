/**
 * The dashboard's shell: signs in, starts the live stream, and shows one page per path (a single-page
 * app: the fleet answers every unknown path with index.html, so deep links work).
 */
import { html, type TemplateResult } from 'lit';
import { currentSession, loadSession, onSession, type Session, signOut } from './api.js';
import { linkClick, navigate, Page } from './base.js';
import { forgetClinics, loadClinics } from './clinics.js';
import { live } from './live.js';
import './pages/signin.js';
import './pages/fleet.js';
import './pages/box.js';
import './pages/clinic.js';
import './pages/alerts.js';
import './pages/voicemail.js';
import './pages/provisioning.js';

interface Route {
  path: string;
  title: string;
  nav: boolean;
  render: (m: RegExpMatchArray) => TemplateResult;
}

const ROUTES: Route[] = [
  { path: '^/$', title: 'Fleet', nav: false, render: () => html`<fleet-page></fleet-page>` },
  { path: '^/fleet$', title: 'Fleet', nav: true, render: () => html`<fleet-page></fleet-page>` },
  {
    path: '^/boxes/([^/]+)$',
    title: 'Box',
    nav: false,
    render: (m) => html`<box-page .ref=${decodeURIComponent(m[1]!)}></box-page>`,
  },
  { path: '^/clinics$', title: 'Clinics', nav: true, render: () => html`<clinic-page></clinic-page>` },
  {
    path: '^/clinics/([^/]+)$',
    title: 'Clinic',
    nav: false,
    render: (m) => html`<clinic-page .clinicId=${decodeURIComponent(m[1]!)}></clinic-page>`,
  },
  { path: '^/alerts$', title: 'Alerts', nav: true, render: () => html`<alerts-page></alerts-page>` },
  { path: '^/voicemail$', title: 'Voicemail', nav: true, render: () => html`<voicemail-page></voicemail-page>` },
  {
    path: '^/provisioning$',
    title: 'Provisioning',
    nav: true,
    render: () => html`<provisioning-page></provisioning-page>`,
  },
];

class CallboxApp extends Page {
  static override properties = { session: { state: true }, path: { state: true }, ready: { state: true } };
  declare session: Session | null;
  declare path: string;
  declare ready: boolean;
  declare liveUp: boolean;

  constructor() {
    super();
    this.session = null;
    this.path = location.pathname;
    this.ready = false;
    this.liveUp = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('popstate', () => {
      this.path = location.pathname;
    });
    this.addEventListener('click', linkClick);
    live.onState((up) => {
      this.liveUp = up;
      this.requestUpdate();
    });
    onSession((s) => {
      const was = this.session;
      this.session = s;
      if (s && !was) {
        void loadClinics(true).then(() => this.requestUpdate());
        live.start();
      }
      if (!s) {
        live.stop();
        forgetClinics();
      }
    });
    void loadSession().then(() => {
      this.ready = true;
    });
  }

  private home(s: Session): string {
    return s.role === 'clinic' && s.clinicId ? `/clinics/${encodeURIComponent(s.clinicId)}` : '/fleet';
  }

  protected override render(): TemplateResult {
    if (!this.ready) return html`<p role="status">Loading…</p>`;
    const s = this.session ?? currentSession();
    if (!s) {
      if (this.path !== '/signin') {
        const next = this.path === '/' ? '' : `?next=${encodeURIComponent(this.path)}`;
        queueMicrotask(() => navigate(`/signin${next}`));
      }
      document.title = 'Sign in · Callbox';
      return html`<signin-page></signin-page>`;
    }
    if (this.path === '/signin' || this.path === '/') {
      const next = new URLSearchParams(location.search).get('next');
      queueMicrotask(() => navigate(next?.startsWith('/') ? next : this.home(s)));
      return html``;
    }
    const route = ROUTES.find((r) => new RegExp(r.path).test(this.path));
    const m = route ? this.path.match(new RegExp(route.path))! : null;
    document.title = `${route?.title ?? 'Not found'} · Callbox`;
    const navItems = ROUTES.filter((r) => r.nav && !(s.role === 'clinic' && r.title === 'Provisioning'));
    return html`
      <header class="top">
        <span class="brand">Callbox</span>
        <nav aria-label="Main">
          ${navItems.map((r) => {
            const href = r.path.replace(/[\^$]/g, '');
            const here = this.path.startsWith(href);
            return html`<a href=${href} aria-current=${here ? 'page' : 'false'}>${r.title}</a>`;
          })}
        </nav>
        <span class="live ${this.liveUp ? 'up' : 'down'}" role="status" aria-label="Live updates"
          >${this.liveUp ? 'live' : 'reconnecting…'}</span
        >
        <span class="who">${s.user} (${s.role})</span>
        <button type="button" @click=${() => void signOut().then(() => navigate('/signin'))}>Sign out</button>
      </header>
      <main>${route && m ? route.render(m) : html`<h1>Not found</h1><p>No page at ${this.path}.</p>`}</main>
    `;
  }
}

customElements.define('callbox-app', CallboxApp);
