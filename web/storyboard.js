// GET /p/<id>: a project's scenes and their image slots, filled in live from the event stream.
import { api, download, eventsUrl } from './api.js';
import { busy, errorBlock, formatDate, h, openDialog, progressBar, ratio, statusBadge, toast } from './ui.js';

/** Fields of a scene the page shows itself; every other one is listed as an extra field. */
const OWN_FIELDS = new Set(['index', 'prompt', 'imageUrls', 'images', 'staleImages']);

export async function render(main) {
  const id = decodeURIComponent(location.pathname.split('/')[2] ?? '');
  let project;
  try {
    project = await api('GET', `/projects/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404 || err.status === 400) {
      document.title = 'Not found · sceneworks';
      main.replaceChildren(h('section', { class: 'notice' }, h('h1', {}, 'Project not found'), h('p', {}, 'It does not exist, or it is not yours.'), h('p', {}, h('a', { href: '/' }, 'Back to your projects'))));
      return;
    }
    throw err;
  }
  new Storyboard(main, project).show();
}

class Storyboard {
  constructor(main, project) {
    this.main = main;
    this.project = project;
    this.favorites = new Set();
    this.source = null;
    /** "scene:image" → the slot's element. */
    this.slots = new Map();
  }

  get id() {
    return this.project.id;
  }

  show() {
    document.title = `${this.project.title || 'Untitled project'} · sceneworks`;
    this.header = h('div', { class: 'board-head' });
    this.scenesEl = h('div', { class: 'scenes' });
    this.main.replaceChildren(this.header, this.scenesEl);
    this.renderHeader();
    this.renderScenes();
    void this.loadFavorites();
    this.watch();
  }

  /** Reads the project again; the scenes are drawn again only when they changed (no flicker). */
  async reload() {
    const before = JSON.stringify(this.project.generatedOutput);
    this.project = await api('GET', `/projects/${this.id}`);
    this.renderHeader();
    if (JSON.stringify(this.project.generatedOutput) !== before) this.renderScenes();
  }

  renderHeader() {
    const p = this.project;
    const failed = p.progress.failed > 0;
    this.header.replaceChildren(
      h('div', { class: 'board-title' }, h('h1', {}, p.title || 'Untitled project'), statusBadge(p.status)),
      h('p', { class: 'muted' }, `${p.generatedOutput.scenes.length} scenes · ${p.settings.imagesPerScene} per scene · ${p.settings.aspectRatio}${p.settings.style ? ` · ${p.settings.style}` : ''} · started ${formatDate(p.createdAt)}`),
      progressBar(p.progress, 'Project progress'),
      h(
        'div',
        { class: 'actions' },
        failed ? h('button', { type: 'button', onclick: (e) => busy(e.currentTarget, () => this.retry()) }, 'Retry failed') : null,
        h('button', { type: 'button', class: 'ghost', onclick: (e) => busy(e.currentTarget, () => download(`/projects/${this.id}/archive`, 'project.zip')) }, 'Download all (ZIP)'),
        h('button', { type: 'button', class: 'danger', onclick: (e) => busy(e.currentTarget, () => this.deleteProject()) }, 'Delete project'),
      ),
    );
  }

  renderScenes() {
    this.slots.clear();
    this.scenesEl.replaceChildren(...this.project.generatedOutput.scenes.map((scene) => this.sceneSection(scene)));
  }

  sceneSection(scene) {
    const prompt = h('textarea', { id: `prompt-${scene.index}`, rows: 3, maxlength: 4000, required: true }, scene.prompt ?? '');
    const extras = Object.entries(scene).filter(([key]) => !OWN_FIELDS.has(key));
    const slotCount = Math.max(scene.imageUrls.length, scene.images.length ? scene.images[scene.images.length - 1].imageIndex + 1 : 0, 1);
    const byIndex = new Map(scene.images.map((image) => [image.imageIndex, image]));
    const grid = h('div', { class: 'slots' });
    for (let i = 0; i < slotCount; i++) {
      const slot = h('figure', { class: 'slot', style: { aspectRatio: ratio(this.project.settings.aspectRatio) }, dataset: { sceneIndex: String(scene.index), imageIndex: String(i) } });
      this.slots.set(`${scene.index}:${i}`, slot);
      this.fillSlot(slot, scene, byIndex.get(i) ?? null, scene.imageUrls[i] ?? null);
      grid.append(slot);
    }
    const regenerate = h('button', { type: 'submit' }, 'Regenerate scene');
    return h(
      'section',
      { class: 'scene card', id: `scene-${scene.index}`, dataset: { sceneIndex: String(scene.index) }, 'aria-labelledby': `scene-title-${scene.index}` },
      h('h2', { id: `scene-title-${scene.index}` }, `Scene ${scene.index}`, scene.staleImages ? h('span', { class: 'badge stale' }, `${scene.staleImages} from an older prompt`) : null),
      extras.length ? h('dl', { class: 'extras' }, extras.flatMap(([key, value]) => [h('dt', {}, key), h('dd', {}, typeof value === 'string' ? value : JSON.stringify(value))])) : null,
      h(
        'form',
        {
          class: 'prompt-form',
          onsubmit: (e) => {
            e.preventDefault();
            void busy(regenerate, () => this.regenerate(scene.index, prompt.value));
          },
        },
        h('label', { for: prompt.id }, 'Prompt'),
        prompt,
        regenerate,
      ),
      grid,
    );
  }

  /** One slot as its image's state shows it: placeholder, spinner, image, or error with retry. */
  fillSlot(slot, scene, image, legacyUrl) {
    // Empty: a slot whose image was deleted (the API shows it failed with error "deleted"), or
    // one without a row and without a legacy image.
    const deleted = image?.status === 'failed' && image.error === 'deleted';
    const status = deleted ? 'empty' : (image?.status ?? (legacyUrl ? 'succeeded' : 'empty'));
    const url = deleted ? null : (image?.url ?? legacyUrl);
    slot.dataset.status = status;
    if (image) slot.dataset.imageId = image.id;
    else delete slot.dataset.imageId;
    const alt = scene.prompt ?? `Scene ${scene.index}, image ${Number(slot.dataset.imageIndex) + 1}`;
    const parts = [];
    if (url) {
      const img = h('img', { src: url, alt, loading: 'lazy', decoding: 'async' });
      if (image?.width && image?.height) {
        img.width = image.width;
        img.height = image.height;
      }
      parts.push(img);
    }
    if (status === 'queued') parts.push(h('div', { class: 'placeholder' }, h('span', {}, 'Queued')));
    if (status === 'empty') parts.push(h('div', { class: 'placeholder' }, h('span', {}, 'No image'), h('button', { type: 'button', onclick: (e) => busy(e.currentTarget, () => this.retry()) }, 'Generate')));
    if (status === 'running') parts.push(h('div', { class: 'placeholder working' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, 'Generating…')));
    if (status === 'failed') {
      parts.push(
        h(
          'div',
          { class: 'placeholder failed', role: 'alert' },
          h('p', {}, image?.error ?? 'This image could not be made.'),
          h('button', { type: 'button', onclick: (e) => busy(e.currentTarget, () => this.retry()) }, 'Retry'),
        ),
      );
    }
    if (status === 'succeeded' && image) parts.push(this.imageTools(image));
    slot.replaceChildren(...parts, h('figcaption', { class: 'sr-only' }, `Scene ${scene.index}, image ${Number(slot.dataset.imageIndex) + 1}: ${status}`));
  }

  imageTools(image) {
    const favorite = this.favorites.has(image.id);
    return h(
      'div',
      { class: 'tools' },
      h('a', { href: image.url, target: '_blank', rel: 'noopener', class: 'tool' }, 'Open'),
      h(
        'button',
        { type: 'button', class: 'tool favorite', 'aria-pressed': String(favorite), title: favorite ? 'Remove from favorites' : 'Add to favorites', onclick: (e) => busy(e.currentTarget, () => this.toggleFavorite(image)) },
        favorite ? '★' : '☆',
        h('span', { class: 'sr-only' }, ' favorite'),
      ),
      h('button', { type: 'button', class: 'tool', onclick: (e) => busy(e.currentTarget, () => download(`/images/${image.id}/download`, 'image')) }, 'Download'),
      h('button', { type: 'button', class: 'tool', onclick: (e) => busy(e.currentTarget, () => this.showVersions(image)) }, 'Versions'),
      h('button', { type: 'button', class: 'tool danger', onclick: (e) => busy(e.currentTarget, () => this.deleteImage(image)) }, 'Delete'),
    );
  }

  sceneOf(index) {
    return this.project.generatedOutput.scenes.find((s) => s.index === index);
  }

  /** An `image` event: the row replaces its slot's image, in the project and on the page. */
  applyImage(event) {
    const scene = this.sceneOf(event.sceneIndex);
    if (!scene) return;
    const { sceneIndex, ...image } = event;
    const at = scene.images.findIndex((i) => i.imageIndex === image.imageIndex);
    if (at >= 0) scene.images[at] = { ...scene.images[at], ...image };
    else scene.images.push(image), scene.images.sort((a, b) => a.imageIndex - b.imageIndex);
    scene.imageUrls[image.imageIndex] = image.url;
    const slot = this.slots.get(`${sceneIndex}:${image.imageIndex}`);
    if (slot) this.fillSlot(slot, scene, scene.images[at >= 0 ? at : scene.images.findIndex((i) => i.imageIndex === image.imageIndex)], null);
    else this.renderScenes(); // a slot the page did not have (the scene grew)
  }

  /** Follows the project's event stream until it is done; started again when new work is queued. */
  watch() {
    if (this.source) return;
    const source = new EventSource(eventsUrl(this.id));
    this.source = source;
    source.addEventListener('image', (e) => this.applyImage(JSON.parse(e.data)));
    source.addEventListener('progress', (e) => {
      this.project.progress = JSON.parse(e.data);
      this.renderHeaderProgress();
    });
    source.addEventListener('done', (e) => {
      source.close();
      if (this.source === source) this.source = null;
      this.project.status = JSON.parse(e.data).status ?? this.project.status;
      void this.reload().catch(() => {});
    });
  }

  renderHeaderProgress() {
    const p = this.project;
    const done = p.progress.succeeded + p.progress.failed === p.progress.total;
    if (!done && p.status !== 'running' && p.progress.running + p.progress.succeeded + p.progress.failed > 0) p.status = 'running';
    this.renderHeader();
  }

  restartWatch() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.watch();
  }

  async retry() {
    this.project = await api('POST', `/projects/${this.id}/generate`);
    this.renderHeader();
    this.renderScenes();
    this.restartWatch();
  }

  async regenerate(sceneIndex, prompt) {
    const scene = this.sceneOf(sceneIndex);
    const body = prompt.trim() && prompt !== scene?.prompt ? { prompt: prompt.trim() } : undefined;
    this.project = await api('POST', `/projects/${this.id}/scenes/${sceneIndex}/regenerate`, body);
    this.renderHeader();
    this.renderScenes();
    this.restartWatch();
    toast(`Scene ${sceneIndex} is being regenerated.`);
  }

  async loadFavorites() {
    try {
      let cursor = null;
      do {
        const page = await api('GET', `/images?projectId=${this.id}&favorite=true&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        for (const item of page.items) this.favorites.add(item.id);
        cursor = page.nextCursor;
      } while (cursor);
      if (this.favorites.size > 0) this.renderScenes();
    } catch {
      // Favorites are a nicety here: the images are shown without them.
    }
  }

  async toggleFavorite(image) {
    const favorite = !this.favorites.has(image.id);
    await api('PATCH', `/images/${image.id}`, { favorite });
    if (favorite) this.favorites.add(image.id);
    else this.favorites.delete(image.id);
    const scene = this.project.generatedOutput.scenes.find((s) => s.images.some((i) => i.id === image.id));
    const slot = scene && this.slots.get(`${scene.index}:${image.imageIndex}`);
    if (slot) this.fillSlot(slot, scene, scene.images.find((i) => i.id === image.id), null);
  }

  async deleteImage(image) {
    if (!confirm('Delete this image and its earlier versions? The slot stays, empty, until you retry.')) return;
    await api('DELETE', `/images/${image.id}`);
    await this.reload();
    toast('Image deleted.');
  }

  async deleteProject() {
    if (!confirm('Delete this project, every image and every version? This cannot be undone.')) return;
    await api('DELETE', `/projects/${this.id}`);
    location.assign('/');
  }

  async showVersions(image) {
    const { items } = await api('GET', `/images/${image.id}/versions`);
    const list = h(
      'ul',
      { class: 'versions' },
      items.map((v) =>
        h(
          'li',
          { class: 'version', dataset: { version: String(v.version) } },
          v.url ? h('img', { src: v.url, alt: v.prompt ?? '', loading: 'lazy', width: v.width ?? undefined, height: v.height ?? undefined }) : h('div', { class: 'placeholder' }, 'No file'),
          h('div', {}, h('strong', {}, `Version ${v.version}`), v.current ? h('span', { class: 'badge' }, 'current') : null, h('p', { class: 'muted' }, v.prompt ?? ''), h('small', { class: 'muted' }, formatDate(v.createdAt))),
          v.current
            ? null
            : h(
                'button',
                {
                  type: 'button',
                  onclick: (e) => {
                    const button = e.currentTarget;
                    return busy(button, async () => {
                      await api('POST', `/images/${image.id}/versions/${v.version}/restore`);
                      button.closest('dialog')?.close();
                      await this.reload();
                      toast(`Version ${v.version} restored.`);
                    });
                  },
                },
                'Restore',
              ),
        ),
      ),
    );
    await openDialog('Versions', items.length ? list : h('p', {}, 'No versions.'));
  }
}

