// Entry point of every page: signing in (AUTH=jwt), then the page named by <body data-page>.
import { claims, expired, settings, signedIn, signIn, signOut, takeTokenFromUrl } from './api.js';
import { h } from './ui.js';

const main = document.getElementById('main');
const page = document.body.dataset.page;

function renderSession() {
  const session = document.getElementById('session');
  if (!session || settings.auth !== 'jwt') return;
  const c = claims();
  session.replaceChildren(
    signedIn()
      ? h('span', {}, h('span', { class: 'muted' }, c?.email ?? (c?.is_anonymous ? 'anonymous user' : 'signed in')), ' ', h('button', { type: 'button', class: 'ghost', onclick: () => (signOut(), location.reload()) }, 'Sign out'))
      : h('span', { class: 'muted' }, 'not signed in'),
  );
}

/** Under AUTH=jwt without a usable token: a form to paste one (a Supabase redirect fills it in by itself). */
function renderSignIn(reason) {
  const input = h('textarea', { id: 'token', name: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: false });
  main.replaceChildren(
    h(
      'section',
      { class: 'notice signin' },
      h('h1', {}, 'Sign in'),
      reason ? h('p', { class: 'error', role: 'alert' }, reason) : null,
      h('p', {}, 'Paste a Supabase access token, or come back here from your app’s sign-in (it leaves the token in the address).'),
      h(
        'form',
        {
          onsubmit: (e) => {
            e.preventDefault();
            signIn(input.value);
            location.reload();
          },
        },
        h('label', { for: 'token' }, 'Access token'),
        input,
        h('button', { type: 'submit' }, 'Sign in'),
      ),
    ),
  );
  input.focus();
}

addEventListener('sceneworks:unauthorized', () => {
  const reason = expired() ? 'Your sign-in has expired. Sign in again to continue.' : 'Your token was not accepted. Sign in again to continue.';
  signOut();
  renderSession();
  renderSignIn(reason);
});

async function start() {
  takeTokenFromUrl();
  renderSession();
  if (page === 'error') return;
  if (!signedIn()) return renderSignIn();
  if (expired()) {
    signOut();
    renderSession();
    return renderSignIn('Your sign-in has expired. Sign in again to continue.');
  }
  const modules = { projects: './projects.js', storyboard: './storyboard.js', gallery: './gallery.js' };
  const { render } = await import(modules[page]);
  await render(main);
}

start().catch((err) => {
  main.replaceChildren(h('section', { class: 'notice' }, h('h1', {}, 'Something went wrong'), h('p', {}, err?.message || 'The page could not be shown.')));
});
