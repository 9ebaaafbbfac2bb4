// The tune console: plain DOM, no framework, no build step. Text from the pipeline is always set as text (never as
// HTML), except the model card, which the server renders and sanitizes.
'use strict';

const token = document.querySelector('meta[name="tune-token"]').content;
const main = document.getElementById('main');
const live = document.getElementById('live');
const STATES = ['preparing', 'dispatched', 'running', 'waiting', 'completed', 'published', 'rejected', 'failed', 'cancelled'];
let page = { onJob() {}, onLoss() {}, onModelEvent() {} };
let generation = 0;

// Live handlers for the page being shown; a page that finishes loading after the user moved on installs nothing.
function listen(mine, handlers) {
  if (mine === generation) Object.assign(page, handlers);
}

// ---- helpers ---------------------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    credentials: 'same-origin',
    headers: { 'X-Tune-Token': token, ...(options.headers || {}) },
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { error: text }; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.body = body;
    error.status = response.status;
    throw error;
  }
  return body;
}

const enc = encodeURIComponent;
const fmt = (n, digits = 3) => (n === null || n === undefined || Number.isNaN(n) ? '—' : Number(n).toFixed(digits));
const bytes = n => n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
const when = t => t ? new Date(t).toLocaleString() : '—';

function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}

const terminal = state => ['published', 'rejected', 'failed', 'cancelled'].includes(state);

function badge(state) {
  return el('span', { class: `state state-${state}`, text: state });
}

function failure(error) {
  const box = el('div', { class: 'error', role: 'alert' }, error.message);
  if (error.body && Array.isArray(error.body.problems)) box.append(el('ul', {}, error.body.problems.map(p => el('li', {}, p))));
  return box;
}

function section(title, ...children) {
  const id = 'h-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return el('section', { 'aria-labelledby': id }, el('h2', { id }, title), ...children);
}

function show(title, ...children) {
  document.title = `${title} · tune console`;
  main.replaceChildren(...children);
  main.focus({ preventScroll: true });
}

// ---- jobs ------------------------------------------------------------------------------------------------------

function jobRow(job) {
  const p = job.progress;
  const running = job.state === 'running' && p;
  const end = terminal(job.state) ? new Date(job.updatedAt) : new Date();
  return el('tr', { 'data-job': job.jobId },
    el('td', {}, el('a', { href: `#/jobs/${enc(job.jobId)}` }, job.jobId)),
    el('td', {}, job.model),
    el('td', {}, job.strategy),
    el('td', {}, badge(job.state), job.cancelRequested && !terminal(job.state) ? ' (cancel requested)' : ''),
    el('td', {}, p ? el('progress', { max: p.totalSteps, value: p.step, 'aria-label': `progress of job ${job.jobId}` }) : '',
      p ? ` ${p.phase} ${p.step}/${p.totalSteps}` : ''),
    el('td', { class: 'num' }, running ? fmt(p.tokensPerSecond, 0) : '—'),
    el('td', { class: 'num' }, duration((end - new Date(job.createdAt)) / 1000)),
    el('td', { class: 'num' }, running ? duration(p.etaSeconds) : '—'));
}

async function jobsPage(params, mine) {
  const model = params.get('model') || '';
  const state = params.get('state') || '';
  const modelInput = el('input', { id: 'filter-model', type: 'search', value: model, placeholder: 'any model' });
  const stateSelect = el('select', { id: 'filter-state' }, el('option', { value: '' }, 'any state'), STATES.map(s => el('option', { value: s, selected: s === state }, s)));
  const apply = () => { location.hash = `#/jobs?model=${enc(modelInput.value.trim())}&state=${enc(stateSelect.value)}`; };
  const filters = el('form', { class: 'filters', onsubmit: e => { e.preventDefault(); apply(); } },
    el('label', { for: 'filter-model' }, 'Model'), modelInput,
    el('label', { for: 'filter-state' }, 'State'), stateSelect,
    el('button', { type: 'submit' }, 'Filter'));
  const body = el('tbody');
  const count = el('p', { class: 'muted' });
  show('Jobs', el('h1', {}, 'Jobs'), filters, count,
    el('table', { class: 'jobs' }, el('caption', { class: 'sr-only' }, 'Jobs, newest first'),
      el('thead', {}, el('tr', {}, ['Job', 'Model', 'Strategy', 'State', 'Progress', 'Tokens/s', 'Elapsed', 'ETA'].map(h => el('th', { scope: 'col' }, h)))),
      body));
  stateSelect.addEventListener('change', apply);
  const rows = new Map();
  const matches = job => (!model || job.model === model) && (!state || job.state === state);
  const upsert = (job, prepend) => {
    const row = jobRow(job);
    const old = rows.get(job.jobId);
    if (old) old.replaceWith(row); else if (prepend) body.prepend(row); else body.append(row);
    rows.set(job.jobId, row);
  };
  try {
    const listed = await api(`/api/jobs?limit=100${model ? `&model=${enc(model)}` : ''}${state ? `&state=${enc(state)}` : ''}`);
    listed.jobs.forEach(job => upsert(job, false));
    count.textContent = listed.more ? `The newest ${listed.jobs.length} jobs; older ones are not shown.` : `${listed.jobs.length} job(s).`;
  } catch (error) {
    main.append(failure(error));
  }
  listen(mine, { onJob: job => { if (matches(job)) upsert(job, true); else if (rows.has(job.jobId)) { rows.get(job.jobId).remove(); rows.delete(job.jobId); } } });
}

function lossChart(phases) {
  const colours = { 'candidate train': '#1f6feb', 'candidate validation': '#0b3d91', 'scratch train': '#d97706', 'scratch validation': '#92400e' };
  const series = [];
  for (const [phase, curves] of Object.entries(phases || {})) {
    for (const kind of ['train', 'validation']) {
      const points = (curves[kind] || []).filter(p => Number.isFinite(p[1]));
      if (points.length) series.push({ name: `${phase} ${kind}`, points });
    }
  }
  const figure = el('figure', { class: 'chart' });
  if (!series.length) {
    figure.append(el('p', { class: 'muted' }, 'No loss points yet: they appear as the trainer reports them.'));
    return figure;
  }
  const all = series.flatMap(s => s.points);
  const [w, h, pad] = [640, 260, 40];
  const maxX = Math.max(1, ...all.map(p => p[0]));
  const minY = Math.min(...all.map(p => p[1])), maxY = Math.max(...all.map(p => p[1]));
  const spanY = maxY - minY || 1;
  const x = v => pad + (v / maxX) * (w - pad - 10);
  const y = v => h - pad + 10 - ((v - minY) / spanY) * (h - pad - 10);
  const chart = svg('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': `Loss per step: ${series.map(s => s.name).join(', ')}` });
  chart.append(svg('line', { x1: pad, y1: h - pad + 10, x2: w - 10, y2: h - pad + 10, class: 'axis' }));
  chart.append(svg('line', { x1: pad, y1: 10, x2: pad, y2: h - pad + 10, class: 'axis' }));
  for (const [value, label] of [[minY, fmt(minY, 2)], [maxY, fmt(maxY, 2)]]) {
    const t = svg('text', { x: 4, y: y(value) + 4, class: 'tick' }); t.textContent = label; chart.append(t);
  }
  const tx = svg('text', { x: w - 10, y: h - 8, class: 'tick', 'text-anchor': 'end' }); tx.textContent = `step ${maxX}`; chart.append(tx);
  for (const s of series) {
    chart.append(svg('polyline', { points: s.points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '), fill: 'none', stroke: colours[s.name] || '#555', 'stroke-width': s.name.endsWith('validation') ? 2.5 : 1.5 }));
  }
  figure.append(chart, el('figcaption', {}, series.map(s => el('span', { class: 'key' }, el('span', { class: 'swatch', 'data-series': s.name }), `${s.name} (${s.points.length} points, last ${fmt(s.points[s.points.length - 1][1])})`))));
  return figure;
}

async function jobPage(id, mine) {
  let job;
  try {
    job = await api(`/api/jobs/${enc(id)}`);
  } catch (error) {
    show('Job', el('h1', {}, `Job ${id}`), failure(error));
    return;
  }
  const status = el('p', { role: 'status', 'aria-live': 'polite' });
  const actions = el('div', { class: 'actions' });
  const render = () => {
    actions.replaceChildren();
    if (!terminal(job.state) && job.state !== 'completed') {
      actions.append(el('button', { type: 'button', onclick: () => act('cancel') }, job.cancelRequested ? 'Cancel requested…' : 'Cancel job'));
    }
    if (['failed', 'cancelled', 'waiting'].includes(job.state)) {
      actions.append(el('button', { type: 'button', onclick: () => act('retry') }, 'Retry job'));
    }
  };
  const act = async verb => {
    try {
      job = await api(`/api/jobs/${enc(id)}/${verb}`, { method: 'POST' });
      status.textContent = verb === 'cancel' ? `Cancel requested: the job is ${job.state}.` : `Retried: the job is ${job.state}.`;
      refresh();
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  };
  const progress = el('div', {});
  const chartHolder = el('div', {});
  const drawProgress = () => {
    const q = job.progress;
    progress.replaceChildren(q && job.state === 'running'
      ? el('p', {}, el('progress', { max: q.totalSteps, value: q.step, 'aria-label': `training progress (${q.phase})` }),
        ` ${q.phase} step ${q.step}/${q.totalSteps}, loss ${fmt(q.loss)}, ${fmt(q.tokensPerSecond, 0)} tokens/s, ETA ${duration(q.etaSeconds)}`)
      : el('p', {}, badge(job.state), job.version ? el('span', {}, ' as ', el('a', { href: `#/models/${enc(job.model)}/versions/${job.version}` }, `${job.model} version ${job.version}`)) : ''));
  };
  let phases = {};
  const loadLoss = async () => {
    try { phases = (await api(`/api/jobs/${enc(id)}/loss`)).phases || {}; } catch { phases = {}; }
    chartHolder.replaceChildren(lossChart(phases));
  };
  const errors = () => {
    const parts = [];
    if (job.error) parts.push(el('pre', { class: 'error-text' }, job.error));
    if (job.datasetErrors && job.datasetErrors.length) {
      parts.push(el('table', {}, el('thead', {}, el('tr', {}, ['File', 'Line', 'Field', 'Problem'].map(h => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, job.datasetErrors.map(e => el('tr', {}, el('td', {}, e.file), el('td', { class: 'num' }, e.line ?? ''), el('td', {}, e.field ?? ''), el('td', {}, e.message))))));
    }
    return parts.length ? section('Errors', ...parts) : null;
  };
  const body = el('div', {});
  const refresh = () => {
    render();
    drawProgress();
    body.replaceChildren(
      section('Loss', chartHolder),
      errors() || '',
      section('Dataset snapshot', el('p', { class: 'muted' }, `Content hash ${job.datasetHash}`),
        el('table', {}, el('thead', {}, el('tr', {}, ['File', 'Size', 'SHA-256'].map(h => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, job.dataset.map(f => el('tr', {}, el('td', {}, f.name), el('td', { class: 'num' }, bytes(f.length)), el('td', { class: 'hash' }, f.sha256)))))),
      section('History', el('table', {}, el('thead', {}, el('tr', {}, ['State', 'At', 'Note'].map(h => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, job.history.map(t => el('tr', {}, el('td', {}, badge(t.state.toLowerCase())), el('td', {}, when(t.at)), el('td', {}, t.note ?? '')))))),
      section('Spec', el('pre', {}, JSON.stringify(job.spec, null, 2))));
  };
  job.state = String(job.state).toLowerCase();
  show(`Job ${id}`, el('h1', {}, `Job ${id}`), el('p', { class: 'muted' }, `${job.model} · ${job.trigger} · created ${when(job.createdAt)} · attempts ${job.attempts}`),
    actions, status, progress, body);
  refresh();
  await loadLoss();
  listen(mine, { onJob: async summary => {
    if (summary.jobId !== id) return;
    try { job = await api(`/api/jobs/${enc(id)}`); job.state = String(job.state).toLowerCase(); } catch { return; }
    refresh();
    if (terminal(job.state) || job.state === 'completed') await loadLoss(); else chartHolder.replaceChildren(lossChart(phases));
  },
  onLoss: point => {
    if (point.jobId !== id) return;
    const phase = phases[point.phase] || (phases[point.phase] = { train: [], validation: [] });
    phase.train.push([point.step, point.loss]);
    if (point.validationLoss !== null && point.validationLoss !== undefined) phase.validation.push([point.step, point.validationLoss]);
    chartHolder.replaceChildren(lossChart(phases));
  } });
}

// ---- models ----------------------------------------------------------------------------------------------------

async function modelsPage() {
  const body = el('tbody');
  show('Models', el('h1', {}, 'Models'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Model', 'Versions', 'Latest', 'Champion'].map(h => el('th', { scope: 'col' }, h)))), body));
  try {
    const { models } = await api('/api/models');
    if (!models.length) main.append(el('p', { class: 'muted' }, 'No model in the registry yet: upload a dataset on the Data page.'));
    for (const index of models) {
      const link = v => v ? el('a', { href: `#/models/${enc(index.model)}/versions/${v}` }, `version ${v}`) : '—';
      body.append(el('tr', {}, el('td', {}, el('a', { href: `#/models/${enc(index.model)}` }, index.model)), el('td', { class: 'num' }, index.readyCount),
        el('td', {}, link(index.aliases.latest)), el('td', {}, link(index.aliases.champion))));
    }
  } catch (error) {
    main.append(failure(error));
  }
}

async function modelPage(name) {
  let model;
  try { model = await api(`/api/models/${enc(name)}`); } catch (error) { show(name, el('h1', {}, name), failure(error)); return; }
  const ready = model.versions.filter(v => v.state === 'ready');
  const aliasesOf = v => Object.entries(model.aliases).filter(([, n]) => n === v).map(([a]) => a).join(', ');
  const left = el('select', { id: 'compare-left' }, ready.map((v, i) => el('option', { value: v.version, selected: i === ready.length - 2 }, `version ${v.version}`)));
  const right = el('select', { id: 'compare-right' }, ready.map((v, i) => el('option', { value: v.version, selected: i === ready.length - 1 }, `version ${v.version}`)));
  show(name, el('h1', {}, `Model ${name}`),
    el('table', {}, el('thead', {}, el('tr', {}, ['Version', 'State', 'Perplexity', 'Job', 'Created', 'Aliases'].map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, model.versions.map(v => el('tr', {},
        el('td', {}, v.state === 'ready' ? el('a', { href: `#/models/${enc(name)}/versions/${v.version}` }, `version ${v.version}`) : `version ${v.version}`),
        el('td', {}, v.state), el('td', { class: 'num' }, fmt(v.perplexity)), el('td', {}, el('a', { href: `#/jobs/${enc(v.jobId)}` }, v.jobId)),
        el('td', {}, when(v.createdAt)), el('td', {}, aliasesOf(v.version)))))),
    model.older ? el('p', { class: 'muted' }, `The newest versions of ${model.readyCount}; older ones: tune models ${name} --all`) : '',
    ready.length > 1 ? section('Compare two versions', el('form', { class: 'filters', onsubmit: e => { e.preventDefault(); location.hash = `#/compare/${enc(name)}/${left.value}/${right.value}`; } },
      el('label', { for: 'compare-left' }, 'Left'), left, el('label', { for: 'compare-right' }, 'Right'), right, el('button', { type: 'submit' }, 'Compare'))) : '');
}

function scoreRows(metrics) {
  const bits = metrics.modality === 'image' ? 'bits_per_dim' : metrics.modality === 'audio' ? 'bits_per_sample' : 'bits_per_byte';
  const rows = [['base (zero-shot)', metrics.base], ['champion (registry)', metrics.champion], ['scratch (same budget)', metrics.scratch], [`candidate (${metrics.strategy})`, metrics.candidate]];
  return { bits, rows: rows.filter(r => r[1]) };
}

function metricsTable(metrics) {
  const { bits, rows } = scoreRows(metrics);
  const quality = metrics.sample_quality;
  return el('table', { class: 'metrics' },
    el('caption', {}, `Scores on the ${metrics.scores_split || 'validation'} split (${(metrics.test_tokens || metrics.validation_tokens || 0).toLocaleString()} tokens)`),
    el('thead', {}, el('tr', {}, ['Model', 'Loss', 'Perplexity', bits.replaceAll('_', ' ')].map(h => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map(([label, score]) => el('tr', {}, el('th', { scope: 'row' }, label), el('td', { class: 'num' }, fmt(score.loss)), el('td', { class: 'num' }, fmt(score.perplexity)),
      el('td', { class: 'num' }, fmt(score[bits] ?? score.bits_per_byte, 4))))),
    quality ? el('tfoot', {}, el('tr', {}, el('td', { colspan: 4 }, `Sample quality (${quality.metric || ''}): ` + JSON.stringify(quality)))) : '');
}

function samples(model, version, metrics, files) {
  const base = `/api/models/${enc(model)}/versions/${version}/files/`;
  const parts = [];
  if (files.includes('samples.png')) parts.push(el('img', { src: base + 'samples.png', alt: 'Sample grid: rows real, base, scratch, candidate' }));
  for (const wav of files.filter(f => f.endsWith('.wav'))) {
    parts.push(el('p', {}, el('span', {}, wav + ' '), el('audio', { controls: true, preload: 'none', src: base + wav, 'aria-label': `Audio sample ${wav}` })));
  }
  for (const s of metrics.samples || []) {
    parts.push(el('div', { class: 'sample' }, el('p', {}, el('strong', {}, 'Prompt: '), s.prompt), el('p', {}, el('strong', {}, 'Base: '), s.base), el('p', {}, el('strong', {}, 'Candidate: '), s.candidate)));
  }
  return parts.length ? section('Samples', ...parts) : null;
}

async function versionPage(name, version) {
  let v;
  try { v = await api(`/api/models/${enc(name)}/versions/${enc(version)}`); } catch (error) { show(name, el('h1', {}, `${name} version ${version}`), failure(error)); return; }
  const files = v.files.map(f => f.name);
  const base = `/api/models/${enc(name)}/versions/${v.version}/files/`;
  const card = el('article', { class: 'card', 'aria-label': 'Model card' }, el('p', { class: 'muted' }, 'Loading the model card…'));
  const lineage = (v.manifest && v.manifest.lineage) || {};
  show(`${name} version ${v.version}`,
    el('h1', {}, `${name} version ${v.version}`, v.aliases.length ? el('span', { class: 'aliases' }, ` (${v.aliases.join(', ')})`) : ''),
    el('p', {}, el('a', { href: `#/models/${enc(name)}` }, 'All versions'), ' · ', el('a', { href: `#/jobs/${enc(v.entry.jobId)}` }, `Job ${v.entry.jobId}`),
      v.versions.length > 1 ? [' · ', el('a', { href: `#/compare/${enc(name)}/${v.versions.filter(n => n !== v.version).pop()}/${v.version}` }, 'Compare with another version')] : ''),
    v.metrics ? section('Metrics', metricsTable(v.metrics)) : '',
    files.includes('loss.png') ? section('Loss', el('img', { src: base + 'loss.png', alt: 'Training and validation loss of candidate and scratch' })) : '',
    v.metrics ? samples(name, v.version, v.metrics, files) || '' : '',
    section('Model card', card),
    section('Lineage', el('dl', {},
      el('dt', {}, 'Base model'), el('dd', {}, lineage.base_model ?? '—'),
      el('dt', {}, 'Job'), el('dd', {}, lineage.job ? el('a', { href: `#/jobs/${enc(lineage.job)}` }, lineage.job) : '—'),
      el('dt', {}, 'Trigger'), el('dd', {}, lineage.trigger ?? '—'),
      el('dt', {}, 'Dataset snapshot'), el('dd', {}, lineage.dataset_hash ?? '—',
        el('ul', {}, (lineage.dataset || []).map(f => el('li', {}, `${f.name} (${bytes(f.length)}) `, el('code', {}, f.sha256))))))),
    section('Manifest', el('table', {}, el('thead', {}, el('tr', {}, ['File', 'Size', 'SHA-256'].map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, v.files.map(f => el('tr', {}, el('td', {}, el('a', { href: base + f.name }, f.name)), el('td', { class: 'num' }, bytes(f.length)),
        el('td', { class: 'hash' }, (v.manifest && v.manifest.files && v.manifest.files[f.name]) || '')))))));
  try {
    const response = await fetch(`/api/models/${enc(name)}/versions/${v.version}/card`, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`the model card could not be loaded (${response.status})`);
    // Rendered and sanitized by the server (raw HTML escaped, unsafe links dropped); the CSP forbids inline script too.
    card.innerHTML = await response.text();
  } catch (error) {
    card.replaceChildren(failure(error));
  }
}

async function comparePage(name, a, b) {
  let left, right;
  try {
    [left, right] = await Promise.all([api(`/api/models/${enc(name)}/versions/${enc(a)}`), api(`/api/models/${enc(name)}/versions/${enc(b)}`)]);
  } catch (error) { show('Compare', el('h1', {}, 'Compare'), failure(error)); return; }
  const column = v => el('div', { class: 'column' },
    el('h2', {}, el('a', { href: `#/models/${enc(name)}/versions/${v.version}` }, `version ${v.version}`), v.aliases.length ? ` (${v.aliases.join(', ')})` : ''),
    v.metrics ? metricsTable(v.metrics) : el('p', {}, 'No metrics.'),
    el('dl', {}, el('dt', {}, 'Strategy'), el('dd', {}, v.metrics ? v.metrics.strategy : '—'),
      el('dt', {}, 'Steps run'), el('dd', {}, v.metrics ? v.metrics.candidate_training.steps_run : '—'),
      el('dt', {}, 'Dataset'), el('dd', {}, (v.manifest && v.manifest.lineage && v.manifest.lineage.dataset_hash) || '—'),
      el('dt', {}, 'Created'), el('dd', {}, when(v.entry.createdAt))),
    v.files.some(f => f.name === 'loss.png') ? el('img', { src: `/api/models/${enc(name)}/versions/${v.version}/files/loss.png`, alt: `Loss of version ${v.version}` }) : '');
  show(`Compare ${name}`, el('h1', {}, `${name}: version ${left.version} and version ${right.version}`), el('div', { class: 'compare' }, column(left), column(right)));
}

// ---- data ------------------------------------------------------------------------------------------------------

function upload(model, file, list) {
  const bar = el('progress', { max: file.size || 1, value: 0, 'aria-label': `upload of ${file.name}` });
  const note = el('span', {}, ` ${file.name} (${bytes(file.size)}) uploading…`);
  const item = el('li', {}, bar, note);
  list.append(item);
  const started = new Date();
  const request = new XMLHttpRequest();
  request.open('PUT', `/api/datasets/${enc(model)}/${file.name.split('/').map(enc).join('/')}`);
  request.setRequestHeader('X-Tune-Token', token);
  request.upload.addEventListener('progress', e => { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } });
  request.addEventListener('load', async () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch { body = { error: request.responseText }; }
    if (request.status !== 201) {
      note.replaceChildren(` ${file.name}: `, el('span', { class: 'error', role: 'alert' }, body.error || `HTTP ${request.status}`));
      return;
    }
    bar.value = bar.max;
    note.textContent = ` ${file.name}: stored as ${body.name}; waiting for the job it starts…`;
    for (let i = 0; i < 120; i++) {
      try {
        const { jobs } = await api(`/api/jobs?model=${enc(model)}&limit=5`);
        const job = jobs.find(j => new Date(j.createdAt) >= new Date(started.getTime() - 2000));
        if (job) {
          note.replaceChildren(` ${file.name}: stored; it started `, el('a', { href: `#/jobs/${enc(job.jobId)}` }, `job ${job.jobId}`), ` (${job.state}).`);
          return;
        }
      } catch { /* try again */ }
      await new Promise(resolve => setTimeout(resolve, 1000));
    }
    note.textContent = ` ${file.name}: stored; no job yet (is \`tune up\` watching this store?).`;
  });
  request.addEventListener('error', () => { note.replaceChildren(el('span', { class: 'error', role: 'alert' }, ` ${file.name}: the upload failed (connection lost); nothing was stored.`)); });
  request.send(file);
}

function dataPage(params) {
  const modelInput = el('input', { id: 'data-model', type: 'text', value: params.get('model') || '', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,63}', autocomplete: 'off' });
  const list = el('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const status = el('p', { role: 'status', 'aria-live': 'polite' });
  const send = files => {
    const model = modelInput.value.trim();
    if (!model) { status.replaceChildren(el('span', { class: 'error', role: 'alert' }, 'Name the model first (the folder under datasets/).')); modelInput.focus(); return; }
    status.textContent = '';
    for (const file of files) upload(model, file, list);
  };
  const picker = el('input', { id: 'data-files', type: 'file', multiple: true, onchange: e => send([...e.target.files]) });
  const zone = el('div', { id: 'drop-zone', class: 'drop', role: 'region', 'aria-label': 'Drop dataset files here' },
    el('p', {}, 'Drop dataset files here (.txt, .jsonl, .png, .jpg, .wav), or '), el('label', { for: 'data-files' }, 'choose dataset files'), picker);
  zone.addEventListener('dragover', e => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', e => { e.preventDefault(); zone.classList.remove('over'); send([...e.dataTransfer.files]); });

  const specText = el('textarea', { id: 'spec-text', rows: 14, spellcheck: 'false' });
  const specStatus = el('div', { role: 'status', 'aria-live': 'polite' });
  const loadSpec = async () => {
    const model = modelInput.value.trim();
    try {
      const { spec } = await api(`/api/specs/${enc(model)}`);
      specText.value = spec ?? '{\n  "baseModel": "demo-base",\n  "steps": 200\n}\n';
      specStatus.textContent = spec === null ? `${model} has no tune.json yet: the defaults apply. Edit and save to create one.` : `Loaded datasets/${model}/tune.json.`;
    } catch (error) { specStatus.replaceChildren(failure(error)); }
  };
  const saveSpec = async () => {
    const model = modelInput.value.trim();
    try {
      const saved = await api(`/api/specs/${enc(model)}`, { method: 'PUT', body: specText.value, headers: { 'Content-Type': 'application/json' } });
      specStatus.textContent = `Valid; saved as ${saved.saved}. It applies to the next upload.`;
    } catch (error) { specStatus.replaceChildren(failure(error)); }
  };
  show('Data', el('h1', {}, 'Data'),
    el('p', {}, el('label', { for: 'data-model' }, 'Model name'), ' ', modelInput, el('span', { class: 'muted' }, ' 1–64 of a–z, 0–9, ., _ and -')),
    section('Upload a dataset', zone, status, list),
    section('Spec (tune.json)', el('label', { for: 'spec-text' }, 'Spec for this model'), specText,
      el('div', { class: 'actions' }, el('button', { type: 'button', onclick: loadSpec }, 'Load spec'), el('button', { type: 'button', onclick: saveSpec }, 'Validate and save spec')),
      specStatus));
}

// ---- events and dead letters ----------------------------------------------------------------------------------

function eventItem(e) {
  const data = e.data || {};
  const detail = e.type === 'ModelPublished' ? `version ${data.version}` : e.type === 'ModelRejected' ? (data.reason || '') : e.type === 'DatasetRejected' ? `${data.totalErrors} problem(s)` : '';
  return el('li', {}, el('time', { datetime: e.time }, when(e.time)), ' ', el('strong', {}, e.type), ' ', e.subject || '', detail ? ` — ${detail}` : '',
    e.type === 'ModelPublished' && data.version ? [' ', el('a', { href: `#/models/${enc(e.subject)}/versions/${data.version}` }, 'open')] : '');
}

async function eventsPage(mine) {
  const events = el('ol', { class: 'events', reversed: true, 'aria-label': 'Model events, newest first' });
  const dead = el('tbody');
  const status = el('p', { role: 'status', 'aria-live': 'polite' });
  const actions = el('div', { class: 'actions' });
  const loadDead = async () => {
    try {
      const { deadLetters } = await api('/api/deadletters');
      dead.replaceChildren(...deadLetters.map(d => el('tr', {}, el('td', {}, d.stage), el('td', {}, d.messageId), el('td', {}, d.type ?? ''), el('td', {}, d.model ?? ''),
        el('td', { class: 'num' }, d.deliveryCount), el('td', {}, d.reason), el('td', {}, d.description))));
      if (!deadLetters.length) dead.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No dead-lettered messages.')));
      const stages = [...new Set(deadLetters.map(d => d.stage))];
      actions.replaceChildren(...stages.map(stage => el('button', { type: 'button', onclick: () => requeue(stage) }, `Requeue ${stage} dead letters`)));
    } catch (error) { status.replaceChildren(failure(error)); }
  };
  const requeue = async stage => {
    try {
      const { requeued } = await api(`/api/deadletters/requeue?stage=${enc(stage)}`, { method: 'POST' });
      status.textContent = `Requeued ${requeued} ${stage} message(s): they are handled again.`;
      await loadDead();
    } catch (error) { status.replaceChildren(failure(error)); }
  };
  show('Events', el('h1', {}, 'Events and dead letters'),
    section('Model events (live)', el('p', { class: 'muted' }, 'ModelPublished, ModelRejected and DatasetRejected, as subscribers receive them.'), events),
    section('Dead letters', el('table', {}, el('thead', {}, el('tr', {}, ['Stage', 'Message', 'Type', 'Model', 'Deliveries', 'Reason', 'Description'].map(h => el('th', { scope: 'col' }, h)))), dead),
      actions, status, el('button', { type: 'button', onclick: loadDead }, 'Refresh dead letters')));
  try { (await api('/api/events')).events.forEach(e => events.prepend(eventItem(e))); } catch (error) { main.append(failure(error)); }
  await loadDead();
  listen(mine, { onModelEvent: e => events.prepend(eventItem(e)) });
}

// ---- routing and the live stream -------------------------------------------------------------------------------

async function route() {
  page = { onJob() {}, onLoss() {}, onModelEvent() {} };
  const mine = ++generation;
  const [path, query] = (location.hash.slice(1) || '/jobs').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${parts[0] === 'compare' ? 'models' : parts[0]}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (parts[0] === 'jobs' && parts[1]) return jobPage(parts[1], mine);
  if (parts[0] === 'models' && parts[1] && parts[2] === 'versions' && parts[3]) return versionPage(parts[1], parts[3]);
  if (parts[0] === 'models' && parts[1]) return modelPage(parts[1]);
  if (parts[0] === 'models') return modelsPage();
  if (parts[0] === 'compare' && parts[3]) return comparePage(parts[1], parts[2], parts[3]);
  if (parts[0] === 'data') return dataPage(params);
  if (parts[0] === 'events') return eventsPage(mine);
  return jobsPage(params, mine);
}

function connect() {
  const stream = new EventSource('/api/stream');
  stream.addEventListener('open', () => { live.textContent = 'live'; live.className = 'on'; });
  stream.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.className = 'off'; });
  stream.addEventListener('job', e => page.onJob(JSON.parse(e.data)));
  stream.addEventListener('loss', e => page.onLoss(JSON.parse(e.data)));
  stream.addEventListener('model-event', e => page.onModelEvent(JSON.parse(e.data)));
}

window.addEventListener('hashchange', route);
route();
connect();
