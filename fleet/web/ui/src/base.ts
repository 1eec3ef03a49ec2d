/**
 * The base of every dashboard element: Lit, rendering into the light DOM so one stylesheet styles the
 * whole page and labels, roles and form controls stay plain HTML that assistive tools (and the browser
 * tests) find by role and label.
 */
import { LitElement } from 'lit';

export class Page extends LitElement {
  protected override createRenderRoot(): HTMLElement {
    return this;
  }
}

/** Go to a path of the single-page app without reloading. */
export function navigate(path: string): void {
  if (location.pathname + location.search === path) return;
  history.pushState(null, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

/** A click on an in-app link navigates without reloading (ctrl/middle click keeps the browser's way). */
export function linkClick(e: MouseEvent): void {
  const a = (e.target as HTMLElement).closest('a');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const href = a.getAttribute('href');
  if (!href?.startsWith('/') || href.startsWith('/api/')) return;
  e.preventDefault();
  navigate(href);
}
