// GET / : the user's projects, newest first, and the form that starts one.
import { api, ApiError, settings } from './api.js';
import { errorBlock, formatDate, h, progressBar, statusBadge } from './ui.js';

const RATIOS = ['16:9', '1:1', '9:16', '4:3', '3:4', '3:2', '2:3'];

/**
 * The scenes field: one prompt per line, or pasted JSON (an array of scenes or of prompts, or
 * an object with `scenes`). Scene objects keep every field (narration…), as the API does.
 */
export function parseScenes(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let value;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      throw new ApiError(400, 'VALIDATION_FAILED', `The scenes are not valid JSON: ${err.message}`);
    }
    const list = Array.isArray(value) ? value : value.scenes;
    if (!Array.isArray(list)) throw new ApiError(400, 'VALIDATION_FAILED', 'Pasted JSON must be a list of scenes, or an object with "scenes".');
    return list.map((s) => (typeof s === 'string' ? { prompt: s } : s));
  }
  return trimmed
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((prompt) => ({ prompt }));
}

function field(label, control, hint) {
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hint ? h('small', { class: 'muted' }, hint) : null);
}

function createForm() {
  const title = h('input', { id: 'title', name: 'title', maxlength: 200, placeholder: 'Coffee shop explainer' });
  const scenes = h('textarea', { id: 'scenes', name: 'scenes', rows: 6, required: true, placeholder: 'A barista pours latte art\nA customer smiles at the window' });
  const perScene = h('input', { id: 'imagesPerScene', name: 'imagesPerScene', type: 'number', min: 1, max: 8, value: '1', required: true });
  const aspect = h('select', { id: 'aspectRatio', name: 'aspectRatio' }, RATIOS.map((r) => h('option', { value: r }, r)));
  const style = h('input', { id: 'style', name: 'style', maxlength: 200, placeholder: 'watercolor' });
  const provider = h('select', { id: 'provider', name: 'provider' }, settings.providers.map((p) => h('option', { value: p, selected: p === settings.defaultProvider }, p)));
  const problems = h('div', { class: 'form-errors' });
  const submit = h('button', { type: 'submit' }, 'Start generating');
  const form = h(
    'form',
    {
      class: 'card create',
      'aria-labelledby': 'create-title',
      onsubmit: async (e) => {
        e.preventDefault();
        problems.replaceChildren();
        submit.disabled = true;
        try {
          const payload = {
            scenes: parseScenes(scenes.value),
            imagesPerScene: Number(perScene.value),
            aspectRatio: aspect.value,
            provider: provider.value,
          };
          if (title.value.trim()) payload.title = title.value.trim();
          if (style.value.trim()) payload.style = style.value.trim();
          const project = await api('POST', '/projects', payload);
          location.assign(`/p/${project.id}`);
        } catch (err) {
          problems.replaceChildren(errorBlock(err));
          submit.disabled = false;
        }
      },
    },
    h('h2', { id: 'create-title' }, 'New storyboard'),
    field('Title', title),
    field('Scenes', scenes, 'One prompt per line, or paste JSON: [{"prompt": "…", "narration": "…"}]'),
    h('div', { class: 'row' }, field('Images per scene', perScene), field('Aspect ratio', aspect), field('Provider', provider)),
    field('Style', style, 'Optional: added to every prompt'),
    problems,
    submit,
  );
  return form;
}

function projectItem(p) {
  return h(
    'li',
    { class: 'project', dataset: { projectId: p.id } },
    h('div', { class: 'project-head' }, h('a', { href: `/p/${p.id}` }, p.title || 'Untitled project'), statusBadge(p.status)),
    progressBar(p.progress, `Progress of ${p.title || 'untitled project'}`),
    h('small', { class: 'muted' }, `Started ${formatDate(p.createdAt)}`),
  );
}

export async function render(main) {
  document.title = 'Projects · sceneworks';
  const list = h('ul', { class: 'projects', 'aria-label': 'Your projects' });
  const more = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Show more');
  const status = h('div', { role: 'status' });
  main.replaceChildren(h('h1', {}, 'Your projects'), h('div', { class: 'two-col' }, createForm(), h('section', { class: 'list' }, status, list, more)));

  let cursor = null;
  async function load() {
    more.disabled = true;
    try {
      const page = await api('GET', `/projects?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      list.append(...page.items.map(projectItem));
      cursor = page.nextCursor;
      more.hidden = !cursor;
      if (list.children.length === 0) status.replaceChildren(h('p', { class: 'muted' }, 'No projects yet: start one with the form.'));
    } catch (err) {
      status.replaceChildren(errorBlock(err));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener('click', load);
  await load();

  // While projects on the first page are still generating, their status and progress are
  // refreshed in place every few seconds (one request for the page, never one per project).
  const refresh = async () => {
    const live = [...list.querySelectorAll('.project')].some((el) => ['queued', 'running'].includes(el.querySelector('.badge')?.textContent));
    if (!live || !document.body.contains(list)) return;
    try {
      const page = await api('GET', '/projects?limit=20');
      for (const p of page.items) list.querySelector(`[data-project-id="${p.id}"]`)?.replaceWith(projectItem(p));
    } catch {
      // The next round tries again; the list shown stays as it was.
    }
    setTimeout(refresh, 3000);
  };
  setTimeout(refresh, 3000);
}
