/** The sign-in page: an ops user (ops:<name>) or a clinic user, with their password. */
import { html } from 'lit';
import { ApiError, signIn } from '../api.js';
import { Page } from '../base.js';

class SigninPage extends Page {
  static override properties = { error: { state: true }, busy: { state: true } };
  declare error: string;
  declare busy: boolean;

  constructor() {
    super();
    this.error = '';
    this.busy = false;
  }

  private async submit(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const data = new FormData(form);
    this.busy = true;
    this.error = '';
    try {
      await signIn(String(data.get('user') ?? ''), String(data.get('password') ?? ''));
    } catch (err) {
      this.error =
        err instanceof ApiError && err.status === 401
          ? 'Wrong user name or password.'
          : err instanceof Error
            ? err.message
            : String(err);
    } finally {
      this.busy = false;
    }
  }

  protected override render() {
    return html`
      <main class="signin">
        <h1>Sign in to Callbox</h1>
        <form @submit=${(e: SubmitEvent) => void this.submit(e)} aria-describedby="signin-error">
          <label for="signin-user">User</label>
          <input id="signin-user" name="user" autocomplete="username" required />
          <label for="signin-password">Password</label>
          <input id="signin-password" name="password" type="password" autocomplete="current-password" required />
          <button type="submit" ?disabled=${this.busy}>Sign in</button>
          <p id="signin-error" class="error" role="alert">${this.error}</p>
        </form>
      </main>
    `;
  }
}

customElements.define('signin-page', SigninPage);
