// GET /gallery: every image the user made, newest first, with search and filters; more load on scroll.
import { api, settings } from './api.js';
import { busy, errorBlock, formatDate, h, openDialog, toast } from './ui.js';

const PAGE_SIZE = 30;

export async function render(main) {
  document.title = 'Gallery · sceneworks';
  const search = h('input', { id: 'q', type: 'search', placeholder: 'Search prompts', autocomplete: 'off' });
  const favorites = h('input', { id: 'favorites', type: 'checkbox' });
  const provider = h('select', { id: 'provider-filter' }, h('option', { value: '' }, 'All providers'), settings.providers.map((p) => h('option', { value: p }, p)));
  const grid = h('ul', { class: 'gallery', 'aria-label': 'Images' });
  const status = h('div', { class: 'gallery-status', role: 'status' });
  const sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
  main.replaceChildren(
    h('h1', {}, 'Gallery'),
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('label', { for: 'q', class: 'sr-only' }, 'Search prompts'),
      search,
      h('label', { class: 'check' }, favorites, ' Favorites only'),
      h('label', { for: 'provider-filter', class: 'sr-only' }, 'Provider'),
      provider,
    ),
    grid,
    status,
    sentinel,
  );

  // Each new query bumps the generation: answers of an older query are dropped when they arrive.
  let generation = 0;
  let cursor = null;
  let loading = false;
  let exhausted = false;

  function query() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (search.value.trim()) params.set('q', search.value.trim());
    if (favorites.checked) params.set('favorite', 'true');
    if (provider.value) params.set('provider', provider.value);
    if (cursor) params.set('cursor', cursor);
    return `/images?${params}`;
  }

  async function loadMore() {
    if (loading || exhausted) return;
    loading = true;
    const mine = generation;
    try {
      const page = await api('GET', query());
      if (mine !== generation) return;
      grid.append(...page.items.map((image) => card(image)));
      cursor = page.nextCursor;
      exhausted = cursor === null;
      status.replaceChildren(grid.children.length === 0 ? h('p', { class: 'muted' }, search.value.trim() || favorites.checked || provider.value ? 'No image matches.' : 'No images yet.') : exhausted ? h('p', { class: 'muted' }, `${grid.children.length} images`) : '');
    } catch (err) {
      if (mine === generation) status.replaceChildren(errorBlock(err));
    } finally {
      if (mine === generation) loading = false;
    }
    // A page that does not fill the screen: keep going while the sentinel is still visible.
    if (mine === generation && !exhausted && sentinel.getBoundingClientRect().top < innerHeight + 400) void loadMore();
  }

  function restart() {
    generation++;
    cursor = null;
    loading = false;
    exhausted = false;
    grid.replaceChildren();
    status.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    void loadMore();
  }

  function card(image) {
    const item = h('li', { class: 'gallery-item', dataset: { imageId: image.id } });
    const fill = () => {
      item.replaceChildren(
        h(
          'button',
          { type: 'button', class: 'thumb', 'aria-label': `Details of: ${image.prompt ?? 'image'}`, onclick: () => void details(image, fill, item) },
          h('img', { src: image.url, alt: image.prompt ?? '', loading: 'lazy', decoding: 'async', width: image.width ?? undefined, height: image.height ?? undefined }),
        ),
        h(
          'div',
          { class: 'tools' },
          h('button', { type: 'button', class: 'tool favorite', 'aria-pressed': String(image.favorite), title: image.favorite ? 'Remove from favorites' : 'Add to favorites', onclick: (e) => busy(e.currentTarget, () => toggleFavorite(image, fill)) }, image.favorite ? '★' : '☆', h('span', { class: 'sr-only' }, ' favorite')),
          h('button', { type: 'button', class: 'tool danger', onclick: (e) => busy(e.currentTarget, () => remove(image, item)) }, 'Delete'),
        ),
      );
    };
    fill();
    return item;
  }

  async function toggleFavorite(image, fill) {
    const updated = await api('PATCH', `/images/${image.id}`, { favorite: !image.favorite });
    Object.assign(image, updated);
    fill();
  }

  async function remove(image, item) {
    if (!confirm('Delete this image and its earlier versions?')) return;
    await api('DELETE', `/images/${image.id}`);
    item.remove();
    toast('Image deleted.');
  }

  async function details(image, fill, item) {
    let record;
    try {
      record = await api('GET', `/images/${image.id}`);
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    const rows = [
      ['Prompt', record.prompt],
      ['Full prompt', record.fullPrompt],
      ['Revised prompt', record.revisedPrompt],
      ['Provider', record.provider],
      ['Model', record.model],
      ['Seed', record.seed],
      ['Size', record.width && record.height ? `${record.width} × ${record.height}` : null],
      ['Type', record.mimeType],
      ['SHA-256', record.sha256],
      ['Made', formatDate(record.createdAt)],
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    const content = h(
      'div',
      { class: 'record' },
      h('a', { href: record.url, target: '_blank', rel: 'noopener' }, h('img', { src: record.url, alt: record.prompt ?? '', width: record.width ?? undefined, height: record.height ?? undefined })),
      h('dl', {}, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
      h('p', {}, h('a', { href: `/p/${record.projectId}#scene-${record.sceneIndex}` }, `${record.projectTitle || 'Untitled project'}, scene ${record.sceneIndex}`)),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: (e) => busy(e.currentTarget, async () => (await toggleFavorite(image, fill), e.target.closest('dialog')?.close())) }, record.favorite ? 'Remove from favorites' : 'Add to favorites'),
        h('button', { type: 'button', class: 'danger', onclick: (e) => busy(e.currentTarget, async () => (await remove(image, item), e.target.closest('dialog')?.close())) }, 'Delete'),
      ),
    );
    await openDialog('Image', content);
  }

  let typing;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(restart, 250);
  });
  favorites.addEventListener('change', restart);
  provider.addEventListener('change', restart);
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) void loadMore();
  }, { rootMargin: '400px' }).observe(sentinel);
  restart();
}
