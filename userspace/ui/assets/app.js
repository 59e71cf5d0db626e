// kspan's local UI: one page, three views chosen by the path. Everything it shows comes
// from the agent's own endpoints (docs/ui.md); nothing is fetched from elsewhere.
//   /                  recent traces and search   (GET /api/ui/traces, /api/services)
//   /traces/{traceId}  the waterfall              (GET /api/traces/{id}, Jaeger JSON)
//   /tail              spans as they arrive       (GET /api/ui/tail?after=N, every second)
'use strict';

const main = document.getElementById('main');

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

async function getJson(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const msg = body && (body.error || (body.errors && body.errors[0] && body.errors[0].msg));
    throw new Error(msg || `${url}: HTTP ${r.status}`);
  }
  return body;
}

// Microseconds as a person reads them.
function fmtDuration(us) {
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}
function fmtTime(us) {
  return new Date(us / 1000).toLocaleString(undefined, { hour12: false }) + `.${String(Math.floor(us / 1000) % 1000).padStart(3, '0')}`;
}

function setNav(which) {
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    if (a.dataset.nav === which) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function showError(where, err) {
  where.replaceChildren(el('p', { class: 'error-text', role: 'alert', text: String(err.message || err) }));
}

// ---------------------------------------------------------------------------------------
// Recent traces and search.

const LOOKBACKS = [['', 'any time'], ['900', 'last 15 min'], ['3600', 'last hour'], ['21600', 'last 6 h'], ['86400', 'last 24 h']];

async function tracesView() {
  setNav('traces');
  document.title = 'Traces · kspan';
  const params = new URLSearchParams(location.search);
  const field = (name, label, input) => el('label', {}, label, input);
  const service = el('select', { name: 'service', id: 'f-service' }, el('option', { value: '', text: 'all services' }));
  const status = el('select', { name: 'status', id: 'f-status' }, el('option', { value: '', text: 'any' }), el('option', { value: 'error', text: 'error' }));
  const lookback = el('select', { name: 'lookback', id: 'f-lookback' }, ...LOOKBACKS.map(([v, t]) => el('option', { value: v, text: t })));
  const form = el('form', { class: 'search', role: 'search', 'aria-label': 'Search traces' },
    field('service', 'Service', service),
    field('operation', 'Operation', el('input', { name: 'operation', id: 'f-operation', placeholder: 'GET /items', value: params.get('operation') || '' })),
    field('status', 'Status', status),
    field('minDuration', 'Min duration', el('input', { name: 'minDuration', id: 'f-min', size: 7, placeholder: '100ms', value: params.get('minDuration') || '' })),
    field('maxDuration', 'Max duration', el('input', { name: 'maxDuration', id: 'f-max', size: 7, placeholder: '2s', value: params.get('maxDuration') || '' })),
    field('attr', 'Attribute', el('input', { name: 'attr', id: 'f-attr', placeholder: 'http.route=/items', value: params.get('attr') || '' })),
    field('lookback', 'Time', lookback),
    field('limit', 'Limit', el('input', { name: 'limit', id: 'f-limit', size: 4, value: params.get('limit') || '50' })),
    el('button', { type: 'submit', id: 'f-submit', text: 'Search' }));
  status.value = params.get('status') || '';
  lookback.value = params.get('lookback') || '';
  const results = el('div', { id: 'results', 'aria-live': 'polite' }, el('p', { class: 'muted', text: 'Loading…' }));
  main.replaceChildren(el('h1', { text: 'Traces' }), form, results);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    history.pushState(null, '', '/?' + q.toString());
    route();
  });

  getJson('/api/services').then((s) => {
    for (const name of s.data || []) service.append(el('option', { value: name, text: name }));
    service.value = params.get('service') || '';
  }).catch(() => {});

  const q = new URLSearchParams();
  for (const k of ['service', 'operation', 'status', 'minDuration', 'maxDuration', 'attr', 'limit']) {
    if (params.get(k)) q.set(k, params.get(k));
  }
  if (params.get('lookback')) q.set('start', String((Date.now() - Number(params.get('lookback')) * 1000) * 1000));
  if (!q.get('limit')) q.set('limit', '50');
  try {
    const list = await getJson('/api/ui/traces?' + q.toString());
    if (!list.traces.length) {
      results.replaceChildren(el('p', { class: 'muted', text: 'No traces match. Traces appear here a moment after their requests end.' }));
      results.dataset.state = 'done';
      return;
    }
    const rows = list.traces.map((t) => el('tr', { 'data-trace-id': t.traceID, class: 'trace-row' },
      el('td', {}, el('a', { href: `/traces/${t.traceID}`, class: 'trace-link' }, `${t.rootService}: ${t.rootName}`),
        t.errorCount ? el('span', { class: 'badge error', text: `${t.errorCount} error${t.errorCount > 1 ? 's' : ''}` }) : null),
      el('td', { class: 'num', text: fmtDuration(t.duration) }),
      el('td', { class: 'num', text: String(t.spanCount) }),
      el('td', { class: 'num', text: String(t.errorCount) }),
      el('td', { text: fmtTime(t.startTime) })));
    results.replaceChildren(el('table', { id: 'trace-table' },
      el('caption', { class: 'muted', text: `${list.traces.length} trace${list.traces.length > 1 ? 's' : ''}, most recent first` }),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Root service: operation' }), el('th', { scope: 'col', class: 'num', text: 'Duration' }),
        el('th', { scope: 'col', class: 'num', text: 'Spans' }), el('th', { scope: 'col', class: 'num', text: 'Errors' }), el('th', { scope: 'col', text: 'Start' }))),
      el('tbody', {}, ...rows)));
  } catch (e) {
    showError(results, e);
  }
  results.dataset.state = 'done';  // for scripts that read the page (tests/apps/ui/drive.mjs)
}

// ---------------------------------------------------------------------------------------
// A trace's waterfall.

function tagValue(span, key) {
  for (const t of span.tags || []) if (t.key === key) return t.value;
  return undefined;
}

// The spans in tree order: each with its depth, children by start time. A span whose
// parent is not in the trace (flushed early at a bound, or lost) is a root, marked.
function treeOrder(spans) {
  const byId = new Map(spans.map((s) => [s.spanID, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    const parentRef = (s.references || []).find((r) => r.refType === 'CHILD_OF' && r.traceID === s.traceID);
    s.parentID = parentRef ? parentRef.spanID : '';
    s.orphan = Boolean(parentRef) && !byId.has(parentRef.spanID);
    if (s.parentID && byId.has(s.parentID)) {
      if (!children.has(s.parentID)) children.set(s.parentID, []);
      children.get(s.parentID).push(s);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a, b) => a.startTime - b.startTime;
  const out = [];
  const walk = (s, depth) => {
    s.depth = depth;
    out.push(s);
    for (const c of (children.get(s.spanID) || []).sort(byStart)) walk(c, depth + 1);
  };
  for (const r of roots.sort(byStart)) walk(r, 0);
  return out;
}

function genaiSummary(span) {
  const model = tagValue(span, 'gen_ai.response.model') || tagValue(span, 'gen_ai.request.model');
  const tool = tagValue(span, 'gen_ai.tool.name');
  if (!model && !tool) return null;
  const parts = [];
  if (model) parts.push(el('span', { text: `model ${model}` }));
  if (tool) parts.push(el('span', { text: `tool ${tool}` }));
  const inTok = tagValue(span, 'gen_ai.usage.input_tokens');
  const outTok = tagValue(span, 'gen_ai.usage.output_tokens');
  if (inTok !== undefined || outTok !== undefined) parts.push(el('span', { text: `tokens ${inTok ?? '?'} in / ${outTok ?? '?'} out` }));
  const ttfc = tagValue(span, 'gen_ai.response.time_to_first_chunk');
  if (ttfc !== undefined) parts.push(el('span', { text: `first chunk ${fmtDuration(Math.round(ttfc * 1e6))}` }));
  return el('div', { class: 'genai', 'aria-label': 'GenAI' }, ...parts);
}

function kvTable(caption, kvs) {
  if (!kvs.length) return null;
  return el('table', {}, el('caption', { class: 'muted', text: caption }),
    el('tbody', {}, ...kvs.map(([k, v]) => el('tr', {}, el('td', { text: k }), el('td', { text: typeof v === 'string' ? v : JSON.stringify(v) })))));
}

function spanDetails(span, trace) {
  const proc = trace.processes[span.processID] || { serviceName: '?', tags: [] };
  const links = (span.references || []).filter((r) => r.refType === 'FOLLOWS_FROM');
  return el('section', { class: 'details', id: 'span-details', 'aria-label': `Span ${span.operationName}` },
    el('h2', { text: `${proc.serviceName}: ${span.operationName}` }),
    el('p', { class: 'muted', text: `span ${span.spanID} · ${fmtDuration(span.duration)} · starts at +${fmtDuration(span.startTime - trace.start)}` }),
    genaiSummary(span),
    kvTable('Attributes', (span.tags || []).map((t) => [t.key, t.value])),
    kvTable('Events', (span.logs || []).map((l) => [`+${fmtDuration(l.timestamp - trace.start)}`,
      l.fields.map((f) => `${f.key}=${typeof f.value === 'string' ? f.value : JSON.stringify(f.value)}`).join(', ')])),
    links.length ? el('div', {}, el('p', { class: 'muted', text: 'Links (follows from)' }),
      el('ul', {}, ...links.map((r) => el('li', {}, el('a', { href: `/traces/${r.traceID}`, text: `${r.traceID} / ${r.spanID}` }))))) : null,
    kvTable('Resource', [['service.name', proc.serviceName], ...(proc.tags || []).map((t) => [t.key, t.value])]));
}

async function traceView(id) {
  setNav('');
  document.title = `Trace ${id} · kspan`;
  main.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  let trace;
  try {
    const r = await getJson(`/api/traces/${encodeURIComponent(id)}`);
    trace = r.data[0];
  } catch (e) {
    showError(main, e);
    return;
  }
  const spans = treeOrder(trace.spans);
  trace.start = Math.min(...spans.map((s) => s.startTime));
  const end = Math.max(...spans.map((s) => s.startTime + s.duration));
  const total = Math.max(1, end - trace.start);
  const root = spans[0];
  const rootProc = trace.processes[root.processID] || { serviceName: '?' };
  const errors = spans.filter((s) => tagValue(s, 'error') === true).length;
  const services = new Set(spans.map((s) => (trace.processes[s.processID] || {}).serviceName));
  const details = el('div', { id: 'details-slot' });
  const rows = spans.map((s) => {
    const proc = trace.processes[s.processID] || { serviceName: '?' };
    const kind = tagValue(s, 'span.kind') || '';
    const isError = tagValue(s, 'error') === true;
    const left = ((s.startTime - trace.start) / total) * 100;
    const width = Math.max(0.2, (s.duration / total) * 100);
    const badges = [];
    if (kind) badges.push(el('span', { class: 'badge', text: kind }));
    if (isError) badges.push(el('span', { class: 'badge error', text: 'error' }));
    if (tagValue(s, 'kspan.parent.ambiguous') === true) badges.push(el('span', { class: 'badge warn', text: 'parent ambiguous', title: 'kspan.parent.ambiguous: linked, not guessed' }));
    if (s.orphan) badges.push(el('span', { class: 'badge warn', text: 'parent not in trace', title: 'The parent span is not stored: the trace was flushed early or a part was lost' }));
    if (tagValue(s, 'kspan.span.cut') !== undefined || tagValue(s, 'kspan.incomplete') !== undefined) badges.push(el('span', { class: 'badge warn', text: 'incomplete' }));
    const row = el('div', {
      class: 'span-row', role: 'row', tabindex: 0, 'aria-selected': 'false',
      'data-span-id': s.spanID, 'data-parent-id': s.parentID, 'data-depth': String(s.depth), 'data-service': proc.serviceName,
      'data-name': s.operationName,
    },
    el('div', { class: 'span-label', role: 'gridcell', style: `padding-left:${8 + s.depth * 16}px` },
      el('span', { class: 'svc', text: proc.serviceName }), ' ', el('span', { class: 'op', text: s.operationName }), ...badges),
    el('div', { class: 'span-timeline', role: 'gridcell' },
      el('div', { class: `bar ${kind === 'client' ? 'client' : ''} ${isError ? 'error' : ''}`, style: `left:${left}%;width:${width}%`, title: fmtDuration(s.duration) }),
      // The duration right of the bar, or left of it when the bar reaches the end.
      el('span', { class: 'bar-label', style: left + width > 85 ? `right:${100 - left}%;margin-right:4px` : `left:${left + width}%;margin-left:4px`, text: fmtDuration(s.duration) })));
    const select = () => {
      for (const r of document.querySelectorAll('.span-row[aria-selected="true"]')) r.setAttribute('aria-selected', 'false');
      row.setAttribute('aria-selected', 'true');
      details.replaceChildren(spanDetails(s, trace));
    };
    row.addEventListener('click', select);
    row.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(); } });
    return row;
  });
  main.replaceChildren(
    el('h1', { text: `${rootProc.serviceName}: ${root.operationName}` }),
    el('div', { class: 'summary' },
      el('span', { text: `Trace ${trace.traceID}` }), el('span', { text: `Duration ${fmtDuration(total)}` }),
      el('span', { text: `${spans.length} spans` }), el('span', { text: `${services.size} services` }),
      el('span', { class: errors ? 'error-text' : '', text: `${errors} errors` }), el('span', { text: `Start ${fmtTime(trace.start)}` })),
    el('div', { class: 'waterfall', id: 'waterfall', role: 'grid', 'aria-label': 'Spans by time, nested by parent' }, ...rows),
    details);
}

// ---------------------------------------------------------------------------------------
// Live tail.

let tailTimer = null;

function tailView() {
  setNav('tail');
  document.title = 'Live tail · kspan';
  const body = el('tbody', { id: 'tail-body' });
  const state = el('p', { class: 'muted', 'aria-live': 'polite', text: 'Waiting for spans…' });
  const pause = el('button', { type: 'button', 'aria-pressed': 'false', text: 'Pause' });
  let paused = false;
  pause.addEventListener('click', () => { paused = !paused; pause.textContent = paused ? 'Resume' : 'Pause'; pause.setAttribute('aria-pressed', String(paused)); });
  main.replaceChildren(el('h1', { text: 'Live tail' }), pause, state,
    el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Start' }), el('th', { scope: 'col', text: 'Service' }),
      el('th', { scope: 'col', text: 'Span' }), el('th', { scope: 'col', text: 'Kind' }), el('th', { scope: 'col', class: 'num', text: 'Duration' }))), body));
  let after = null;
  const MAX_ROWS = 500;
  const poll = async () => {
    if (!paused) {
      try {
        const r = await getJson('/api/ui/tail' + (after === null ? '' : `?after=${after}`));
        for (const s of r.spans) {
          after = s.seq;
          body.prepend(el('tr', { 'data-trace-id': s.traceID },
            el('td', { text: fmtTime(s.startTime) }), el('td', { text: s.service }),
            el('td', {}, el('a', { href: `/traces/${s.traceID}`, text: s.name }), s.error ? el('span', { class: 'badge error', text: 'error' }) : null),
            el('td', { text: s.kind.toLowerCase() }), el('td', { class: 'num', text: fmtDuration(s.duration) })));
        }
        while (body.children.length > MAX_ROWS) body.lastChild.remove();
        if (after === null) after = 0;
        state.textContent = `${body.children.length} spans shown (newest first, at most ${MAX_ROWS})`;
      } catch (e) {
        state.textContent = String(e.message || e);
      }
    }
    tailTimer = setTimeout(poll, 1000);
  };
  poll();
}

// ---------------------------------------------------------------------------------------
// Graphs: who calls whom between services (the store's parent/child spans,
// /api/dependencies, last 24 h) and the agent call graph since kspan started
// (/api/agent-graph: agents, models, tools, sub-agents). Each is drawn as nodes and edges,
// laid out by dagre (vendored at build time: userspace/ui/vendor, /ui/dagre.min.js), and
// listed in a table below it: the table is the accessible view, the drawing is hidden from
// screen readers (aria-hidden) and summarised by the table's caption.

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

// Text width in the drawing's font, for the layout's box sizes.
let measureCtx = null;
function textWidth(text, px) {
  if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d');
  measureCtx.font = `${px}px ${getComputedStyle(document.body).fontFamily}`;
  return Math.ceil(measureCtx.measureText(text).width);
}

// nodes: [{id, label, kind}]; edges: [{from, to, label, kind, error}] (from/to: node ids).
// An SVG element (left to right), or null when the layout library is not there.
function drawGraph(name, nodes, edges) {
  if (typeof dagre === 'undefined' || !nodes.length) return null;
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 110, edgesep: 18, marginx: 12, marginy: 12 });
  for (const n of nodes) g.setNode(n.id, { width: textWidth(n.label, 13) + 28, height: 32 });
  edges.forEach((e, i) => g.setEdge(e.from, e.to,
    { width: textWidth(e.label, 11) + 8, height: 24, labelpos: 'c' }, `e${i}`));
  dagre.layout(g);
  const { width, height } = g.graph();
  const marker = `arrow-${name}`;
  const root = svg('svg', { class: 'graph', 'aria-hidden': 'true', 'data-graph': name,
    width: Math.ceil(width), height: Math.ceil(height), viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}` },
  svg('defs', {}, svg('marker', { id: marker, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' },
    svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))));
  edges.forEach((e, i) => {
    const l = g.edge(e.from, e.to, `e${i}`);
    const d = l.points.map((p, j) => `${j ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    root.append(svg('g', { class: `edge ${e.kind || ''}${e.error ? ' error' : ''}`, 'data-from': e.from, 'data-to': e.to },
      svg('path', { d, 'marker-end': `url(#${marker})` }),
      svg('text', { x: l.x.toFixed(1), y: (l.y - 4).toFixed(1), 'text-anchor': 'middle', text: e.label })));
  });
  for (const n of nodes) {
    const b = g.node(n.id);
    root.append(svg('g', { class: `node ${n.kind || ''}`, 'data-id': n.id, 'data-kind': n.kind || '' },
      svg('rect', { x: (b.x - b.width / 2).toFixed(1), y: (b.y - b.height / 2).toFixed(1), width: b.width, height: b.height, rx: 6 }),
      svg('text', { x: b.x.toFixed(1), y: (b.y + 4.5).toFixed(1), 'text-anchor': 'middle', text: n.label })));
  }
  return el('div', { class: 'graph-box' }, root);
}

const callsText = (n) => `${n} call${n === 1 ? '' : 's'}`;
const fmtMs = (ms) => (ms >= 100 ? String(Math.round(ms)) : ms.toFixed(1)) + ' ms';

async function graphView() {
  setNav('graph');
  document.title = 'Graphs · kspan';
  const services = el('div', { id: 'service-map', 'aria-live': 'polite' }, el('p', { class: 'muted', text: 'Loading…' }));
  const agents = el('div', { id: 'agent-graph', 'aria-live': 'polite' }, el('p', { class: 'muted', text: 'Loading…' }));
  main.replaceChildren(el('h1', { text: 'Graphs' }), el('h2', { text: 'Service map (last 24 h)' }), services,
    el('h2', { text: 'Agent call graph (since kspan started)' }), agents);
  const head = (...names) => el('thead', {}, el('tr', {}, ...names.map(([n, num]) => el('th', { scope: 'col', class: num ? 'num' : '', text: n }))));
  try {
    const d = await getJson('/api/dependencies');
    if (!d.data.length) {
      services.replaceChildren(el('p', { class: 'muted', text: 'No calls between services stored yet.' }));
    } else {
      const names = [...new Set(d.data.flatMap((e) => [e.parent, e.child]))];
      const drawing = drawGraph('services', names.map((n) => ({ id: n, label: n, kind: 'service' })),
        d.data.map((e) => ({ from: e.parent, to: e.child, kind: 'service', label: callsText(e.callCount) })));
      services.replaceChildren(...[drawing, el('table', {},
        el('caption', { text: `${names.length} services, ${d.data.length} caller–callee pairs` }),
        head(['Caller'], ['Callee'], ['Calls', 1]),
        el('tbody', {}, ...d.data.map((e) => el('tr', { 'data-edge': `${e.parent}>${e.child}` },
          el('td', { text: e.parent }), el('td', { text: e.child }), el('td', { class: 'num', text: String(e.callCount) })))))]
        .filter(Boolean));
    }
  } catch (e) { showError(services, e); }
  try {
    const g = await getJson('/api/agent-graph');
    if (!g.edges.length) {
      agents.replaceChildren(el('p', { class: 'muted', text: 'No agent activity seen yet.' }));
    } else {
      // A node per (kind, name): the caller is an agent; the callee's kind is the edge's
      // (model, tool, agent, service).
      const nodes = new Map();
      const node = (kind, name) => {
        const id = `${kind}:${name}`;
        if (!nodes.has(id)) nodes.set(id, { id, kind, label: kind === 'agent' ? name : `${kind}: ${name}` });
        return id;
      };
      const edges = g.edges.map((e) => {
        const parts = [callsText(e.calls)];
        if (e.input_tokens || e.output_tokens) parts.push(`${e.input_tokens}/${e.output_tokens} tok`);
        if (e.errors) parts.push(`${e.errors} err`);
        if (e.p95_ms !== undefined) parts.push(`p95 ${fmtMs(e.p95_ms)}`);
        return { from: node('agent', e.from), to: node(e.kind, e.to), kind: e.kind, error: e.errors > 0, label: parts.join(' · ') };
      });
      const drawing = drawGraph('agents', [...nodes.values()], edges);
      agents.replaceChildren(...[drawing, el('table', {},
        el('caption', { text: `${[...nodes.values()].filter((n) => n.kind === 'agent').length} agents, ${g.edges.length} edges (calls, errors, tokens in/out, p95 latency)` }),
        head(['From'], ['Kind'], ['To'], ['Calls', 1], ['Errors', 1], ['Tokens in', 1], ['Tokens out', 1], ['p95', 1]),
        el('tbody', {}, ...g.edges.map((e) => el('tr', { 'data-edge': `${e.from}>${e.to}`, 'data-kind': e.kind },
          el('td', { text: e.from }), el('td', { text: e.kind }), el('td', { text: e.to }),
          el('td', { class: 'num', text: String(e.calls) }), el('td', { class: 'num', text: String(e.errors) }),
          el('td', { class: 'num', text: String(e.input_tokens ?? 0) }), el('td', { class: 'num', text: String(e.output_tokens ?? 0) }),
          el('td', { class: 'num', text: e.p95_ms === undefined ? '' : fmtMs(e.p95_ms) })))))]
        .filter(Boolean));
    }
  } catch (e) { showError(agents, e); }
  main.dataset.state = 'done';
}

// ---------------------------------------------------------------------------------------

function route() {
  if (tailTimer) { clearTimeout(tailTimer); tailTimer = null; }
  const path = location.pathname;
  const m = path.match(/^\/traces\/([0-9a-fA-F]{1,32})$/);
  if (m) return traceView(m[1]);
  if (path === '/tail') return tailView();
  if (path === '/graph') return graphView();
  return tracesView();
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[href^="/"]');
  if (!a || a.getAttribute('href').startsWith('/metrics') || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  history.pushState(null, '', a.getAttribute('href'));
  route();
});
window.addEventListener('popstate', route);
route();
