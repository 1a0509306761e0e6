// keel inspector page: a plain browser ES module, no framework, no build step.
// It keeps one model of what the daemon said on /ws (src/inspector/protocol.ts)
// and redraws only the parts that changed, at most once per animation frame.

import { stateText } from './state-text.js';

const MAX_EVENTS = 500;
const DETAIL_REFRESH_MS = 1000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- helpers

/** An element with attributes and children; strings always go in as text, never as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** The same for SVG, which needs its namespace. */
function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

const num = (n, digits = 2) =>
  n === null || n === undefined || !Number.isFinite(n)
    ? '—'
    : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const signed = (n, digits = 2) => (n > 0 ? '+' : '') + num(n, digits);
const signClass = (n) => (n > 0 ? 'pos' : n < 0 ? 'neg' : '');

function clockTime(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Every active state's dotted path from the machine root, e.g. {connected: 'live'} -> connected, connected.live. */
function activePaths(value, prefix = '', out = new Set()) {
  if (value === null || value === undefined) return out;
  if (typeof value !== 'object') {
    out.add(prefix + String(value));
    return out;
  }
  for (const [k, v] of Object.entries(value)) {
    out.add(prefix + k);
    activePaths(v, `${prefix}${k}.`, out);
  }
  return out;
}

// ---------------------------------------------------------------- model

const model = {
  instance: '',
  control: false,
  /** id -> ActorView, in the order the daemon first listed them (config order). */
  actors: new Map(),
  /** Newest first, bounded. */
  events: [],
  lastSeq: -1,
  panels: null,
  /** The option chain panel; null while the daemon runs no option_chain. */
  chain: null,
  /** Server clock minus ours: backoff deadlines are the server's wall clock. */
  skew: 0,
};

const ui = {
  selected: decodeURIComponent(location.hash.slice(1)) || null,
  dirty: new Set(),
  scheduled: false,
  /** id -> the actor's row element, kept across redraws so a change can flash. */
  rows: new Map(),
  /** The parent links the tree was last laid out with; a new shape relays it out. */
  shape: '',
  detailTimer: 0,
  detailSeq: 0,
  /** Event lines that arrived since the last draw; after a snapshot the whole list is redrawn instead. */
  newEvents: 0,
  eventsRebuild: true,
  filter: '',
};

/** Mark parts of the page stale; they are redrawn together on the next frame. */
function invalidate(...parts) {
  for (const p of parts) ui.dirty.add(p);
  if (ui.scheduled) return;
  ui.scheduled = true;
  requestAnimationFrame(draw);
}

function draw() {
  ui.scheduled = false;
  const dirty = new Set(ui.dirty);
  ui.dirty.clear();
  if (dirty.has('header')) drawHeader();
  if (dirty.has('tree')) drawTree();
  if (dirty.has('heatmap')) drawHeatmap();
  if (dirty.has('equity')) drawEquity();
  if (dirty.has('positions')) drawPositions();
  if (dirty.has('models')) drawModels();
  if (dirty.has('cluster')) drawCluster();
  if (dirty.has('chain')) drawChain();
  if (dirty.has('events')) drawEvents();
}

// ---------------------------------------------------------------- socket

const conn = { socket: null, attempt: 0, retryAt: 0 };

function connect() {
  setConn('connecting');
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  conn.socket = ws;
  ws.addEventListener('message', (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return; // Not ours to crash on: the next message is whole again.
    }
    receive(msg);
  });
  ws.addEventListener('close', () => {
    if (conn.socket !== ws) return;
    conn.socket = null;
    // Exponential backoff with jitter: a quick blip heals fast, a daemon that is down is not hammered.
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** conn.attempt) * (0.8 + Math.random() * 0.4);
    conn.attempt += 1;
    conn.retryAt = Date.now() + delay;
    setConn('disconnected');
    setTimeout(connect, delay);
  });
  // An error is always followed by close, which schedules the retry.
  ws.addEventListener('error', () => ws.close());
}

function setConn(state) {
  document.body.dataset.conn = state;
  const el = $('conn');
  el.dataset.conn = state;
  if (state === 'connected') el.textContent = 'live';
  else if (state === 'connecting') el.textContent = 'connecting…';
  else tick();
}

function receive(msg) {
  switch (msg.type) {
    case 'snapshot': {
      // A snapshot is the whole truth: after a reconnect (maybe to a restarted daemon) nothing old survives.
      conn.attempt = 0;
      model.instance = msg.instance;
      model.control = msg.control;
      model.skew = msg.at - Date.now();
      model.actors = new Map(msg.actors.map((a) => [a.id, a]));
      model.events = [...msg.events].sort((a, b) => b.seq - a.seq).slice(0, MAX_EVENTS);
      model.lastSeq = model.events.length > 0 ? model.events[0].seq : -1;
      model.panels = msg.panels;
      model.chain = msg.chain ?? null;
      ui.rows.clear();
      ui.shape = '';
      ui.eventsRebuild = true;
      setConn('connected');
      $('instance').textContent = msg.instance;
      document.title = `keel · ${msg.instance}`;
      invalidate('header', 'tree', 'heatmap', 'equity', 'positions', 'models', 'cluster', 'chain', 'events');
      if (ui.selected && model.actors.has(ui.selected)) loadDetail(ui.selected);
      else select(null);
      break;
    }
    case 'actors': {
      model.skew = msg.at - Date.now();
      let touched = false;
      for (const a of msg.actors) {
        model.actors.set(a.id, a);
        if (a.id === ui.selected) touched = true;
      }
      invalidate('tree');
      if (touched) {
        highlightMachine();
        refreshDetailSoon();
      }
      break;
    }
    case 'events': {
      // Seq order from the server; anything at or below what the snapshot held is a duplicate.
      const fresh = msg.events.filter((e) => e.seq > model.lastSeq);
      if (fresh.length === 0) break;
      model.lastSeq = fresh[fresh.length - 1].seq;
      model.events = [...fresh.reverse(), ...model.events].slice(0, MAX_EVENTS);
      ui.newEvents += fresh.length;
      invalidate('events');
      if (fresh.some((e) => e.actor === ui.selected)) refreshDetailSoon();
      break;
    }
    case 'panels':
      model.panels = msg.panels;
      invalidate('header', 'heatmap', 'equity', 'positions', 'models', 'cluster');
      break;
    case 'chain':
      model.chain = msg.chain;
      invalidate('chain');
      break;
  }
}

// A slow tick for what moves without messages: backoff countdowns and the reconnect countdown.
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-until]')) {
    const left = Number(el.dataset.until) - (now + model.skew);
    el.textContent = left > 0 ? `retry in ${(left / 1000).toFixed(1)} s` : 'retrying…';
  }
  if (document.body.dataset.conn === 'disconnected') {
    const left = Math.max(0, conn.retryAt - now);
    $('conn').textContent = `disconnected · retry in ${(left / 1000).toFixed(1)} s`;
  }
}

// ---------------------------------------------------------------- header

function drawHeader() {
  const p = model.panels;
  const gate = $('gate');
  gate.dataset.state = p?.gate?.state ?? '';
  $('gate-state').textContent = p?.gate?.state ?? '—';
  $('gate-reason').textContent = p?.gate ? p.gate.reason : 'no risk gate';
  // Each condition reads `source: reason`.
  const conditions = p?.gate?.conditions ?? [];
  const options = (p?.gate?.options ?? []).map((text) => h('span', { 'data-condition': 'options' }, `⚠ options halted: ${text}  `));
  $('conditions').replaceChildren(...conditions.map((text) => h('span', { 'data-condition': text.split(':')[0] }, `⚠ ${text}  `)), ...options);

  pill('health', p?.health ?? '—', { 'data-health': p?.health ?? '' });
  pill('ib', p?.ib?.state ?? '—', { 'data-state': p?.ib?.state ?? '', title: p?.ib?.reason ?? '' });
  // No redis panel means Redis is not configured, which is fine, not a fault.
  pill('redis', p?.redis?.state ?? 'off', { 'data-state': p?.redis?.state ?? 'off', title: p?.redis?.reason ?? 'not configured' });
  pill('phase', p?.phase ?? '—', {});
}

function pill(id, text, attrs) {
  const el = $(id);
  el.querySelector('b').textContent = text;
  setAttrs(el, attrs);
}

// ---------------------------------------------------------------- actor tree

function drawTree() {
  const actors = [...model.actors.values()];
  const shape = actors.map((a) => `${a.id}<${a.parent}`).join('|');
  for (const a of actors) {
    let row = ui.rows.get(a.id);
    if (!row) {
      row = actorRow(a.id);
      ui.rows.set(a.id, row);
    }
    updateRow(row, a);
  }
  if (shape === ui.shape) return;
  // The set of actors or their parents changed: lay the tree out again, reusing the rows.
  ui.shape = shape;
  for (const id of ui.rows.keys()) if (!model.actors.has(id)) ui.rows.delete(id);
  const children = new Map();
  for (const a of actors) {
    const parent = a.parent !== null && model.actors.has(a.parent) && a.parent !== a.id ? a.parent : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(a.id);
  }
  const placed = new Set();
  const branch = (ids) =>
    h(
      'ul',
      { role: 'group' },
      ids
        .filter((id) => !placed.has(id))
        .map((id) => {
          placed.add(id); // Guards against a parent cycle in bad data.
          const kids = children.get(id);
          return h('li', { role: 'none' }, ui.rows.get(id), kids ? branch(kids) : null);
        }),
    );
  $('tree').replaceChildren(branch(children.get(null) ?? []));
}

function actorRow(id) {
  const row = h(
    'div',
    { class: 'actor', 'data-actor': id, role: 'treeitem', tabindex: 0, onclick: () => select(id) },
    h('span', { class: 'dot' }),
    h('span', {}, h('span', { class: 'id' }, id), h('span', { class: 'kind' })),
    h('span', { class: 'state', 'data-field': 'state' }),
    h(
      'span',
      { class: 'meta' },
      h('span', { class: 'status', 'data-field': 'status' }),
      ' ',
      h('span', { class: 'restarts', 'data-field': 'restarts', title: 'restarts' }),
      ' ',
      h('span', { class: 'backoff', 'data-field': 'backoff' }),
    ),
    h('div', { class: 'err', 'data-field': 'lastError' }),
  );
  row.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') select(id);
  });
  if (id === ui.selected) row.classList.add('selected');
  return row;
}

function updateRow(row, a) {
  const changed = row.dataset.status !== undefined && (row.dataset.status !== a.status || row.dataset.restarts !== String(a.restarts));
  row.dataset.status = a.status;
  row.dataset.restarts = String(a.restarts);
  row.dataset.health = a.health?.status ?? '';
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  row.querySelector('.kind').textContent = a.kind;
  field('state').textContent = stateText(a.state, '—');
  field('status').textContent = a.status;
  const restarts = field('restarts');
  restarts.textContent = `↻${a.restarts}`;
  restarts.dataset.n = String(a.restarts);
  const backoff = field('backoff');
  if (a.backoffUntil) {
    backoff.dataset.until = String(a.backoffUntil);
  } else {
    delete backoff.dataset.until;
    backoff.textContent = '';
  }
  field('lastError').textContent = a.lastError ?? '';
  row.title = [`since ${clockTime(a.since)}`, a.health ? `health ${a.health.status}${a.health.detail ? `: ${a.health.detail}` : ''}` : null, a.lastError]
    .filter(Boolean)
    .join('\n');
  if (changed) {
    // Restart the flash animation: drop the class, force a style flush, add it back.
    row.classList.remove('flash');
    void row.offsetWidth;
    row.classList.add('flash');
  }
}

// ---------------------------------------------------------------- actor detail

function select(id) {
  ui.selected = id;
  for (const [rid, row] of ui.rows) row.classList.toggle('selected', rid === id);
  history.replaceState(null, '', id ? `#${encodeURIComponent(id)}` : location.pathname);
  $('detail-id').textContent = id ?? '';
  if (id) loadDetail(id);
  else $('detail').replaceChildren(h('p', { class: 'hint' }, 'Click an actor to see its state machine, context and events.'));
}

/** At most one fetch per DETAIL_REFRESH_MS while the selected actor keeps changing. */
function refreshDetailSoon() {
  if (ui.detailTimer) return;
  ui.detailTimer = setTimeout(() => {
    ui.detailTimer = 0;
    if (ui.selected) loadDetail(ui.selected);
  }, DETAIL_REFRESH_MS);
}

async function loadDetail(id) {
  const seq = ++ui.detailSeq;
  let detail;
  try {
    const res = await fetch(`/api/actors/${encodeURIComponent(id)}`, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    detail = await res.json();
  } catch (e) {
    if (seq === ui.detailSeq) $('detail').replaceChildren(h('p', { class: 'neg' }, `could not load ${id}: ${e.message}`));
    return;
  }
  // A later click (or refresh) won the race: drop this answer.
  if (seq !== ui.detailSeq || ui.selected !== id) return;
  drawDetail(detail);
}

function drawDetail(d) {
  const a = d.actor;
  const facts = {
    kind: a.kind,
    parent: a.parent ?? '—',
    state: stateText(a.state, '—'),
    status: a.status,
    restarts: String(a.restarts),
    since: clockTime(a.since),
    health: a.health ? `${a.health.status}${a.health.detail ? `: ${a.health.detail}` : ''}` : '—',
    'last error': a.lastError ?? '—',
  };
  const context = Object.entries(d.context ?? {});
  $('detail').replaceChildren(
    h('table', { class: 'kv', 'data-detail': 'actor' }, Object.entries(facts).map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v)))),
    h('h3', {}, 'state machine'),
    d.machine
      ? h('div', { class: 'machine', id: 'machine' }, machineBox(d.machine, '', d.machine.key))
      : h('p', { class: 'hint' }, 'not a state machine'),
    h('h3', {}, 'context'),
    context.length
      ? h('table', { class: 'kv', 'data-detail': 'context' }, context.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))))
      : h('p', { class: 'hint' }, 'empty'),
    h('h3', {}, 'recent events'),
    d.events.length
      ? h('ol', { class: 'log', id: 'detail-events' }, [...d.events].sort((x, y) => y.seq - x.seq).map(eventItem))
      : h('p', { class: 'hint' }, 'none'),
  );
  highlightMachine();
}

/** One state as a box: its name, type and tags, its transitions, then its substates inside it. */
function machineBox(node, path, rootKey) {
  const transitions = Object.entries(node.on ?? {});
  return h(
    'div',
    { class: `sbox ${node.type}`, 'data-path': path, 'data-state-key': node.key },
    h(
      'div',
      { class: 'name' },
      node.key,
      node.type !== 'atomic' ? h('span', { class: 'type' }, node.type) : null,
      node.tags.map((t) => h('span', { class: 'tag' }, `#${t}`)),
    ),
    transitions.length
      ? h(
          'ul',
          { class: 'trans' },
          transitions.map(([event, targets]) => {
            const paths = targets.map((t) => targetPath(t, rootKey));
            return h(
              'li',
              {
                onmouseenter: () => markTargets(paths, true),
                onmouseleave: () => markTargets(paths, false),
              },
              h('span', { class: 'ev' }, event),
              ' → ',
              paths.length ? paths.join(', ') : '(stays)',
            );
          }),
        )
      : null,
    node.states.length
      ? h(
          'div',
          { class: 'children' },
          node.states.map((c) => machineBox(c, path ? `${path}.${c.key}` : c.key, rootKey)),
        )
      : null,
  );
}

/** Targets are dotted paths from the machine root; tolerate a leading '#id.' or the root's own key. */
function targetPath(target, rootKey) {
  let t = target.startsWith('#') ? target.slice(1) : target;
  if (t.startsWith(`${rootKey}.`)) t = t.slice(rootKey.length + 1);
  return t;
}

/** Hovering a transition outlines where it goes: the arrows, without drawing arrows. */
function markTargets(paths, on) {
  for (const box of document.querySelectorAll('#machine .sbox')) {
    const p = box.dataset.path;
    if (paths.some((t) => p === t || p.endsWith(`.${t}`))) box.classList.toggle('target', on);
  }
}

/** The current state comes from the live actor, so the highlight moves with each delta, between fetches. */
function highlightMachine() {
  const a = ui.selected ? model.actors.get(ui.selected) : null;
  const active = activePaths(a?.state ?? null);
  for (const box of document.querySelectorAll('#machine .sbox')) {
    const p = box.dataset.path;
    // The root box is the whole machine: always "active", so it is left plain and only real states light up.
    box.classList.toggle('active', p !== '' && active.has(p));
  }
}

// ---------------------------------------------------------------- feature health

function drawHeatmap() {
  const fh = model.panels?.featureHealth;
  $('quality').textContent = fh?.qualityPct != null ? `quality ${num(fh.qualityPct, 1)}%` : '';
  if (!fh || fh.symbols.length === 0) {
    $('heatmap').replaceChildren(h('p', { class: 'hint' }, 'no feature health yet'));
    $('problems').replaceChildren();
    return;
  }
  const table = h(
    'table',
    { class: 'heat' },
    h('thead', {}, h('tr', {}, h('th', {}), fh.features.map((f) => h('th', { scope: 'col', title: f }, h('span', {}, f))))),
    h(
      'tbody',
      {},
      fh.symbols.map((sym, i) =>
        h(
          'tr',
          { 'data-symbol': sym },
          h('th', { scope: 'row' }, sym),
          fh.features.map((f, j) => {
            const score = fh.scores[i]?.[j] ?? null;
            const status = fh.status[i]?.[j] ?? '';
            const cell = h('td', {
              'data-feature': f,
              'data-status': status,
              'data-score': score ?? '',
              title: `${sym} ${f}: ${status || 'not judged'}${score !== null ? ` (${num(score, 0)})` : ''}`,
            });
            // 0 red .. 100 green; unjudged and disabled cells keep their CSS pattern.
            if (score !== null && status !== 'DISABLED') cell.style.background = `hsl(${Math.round(score * 1.2)} 65% 38%)`;
            return cell;
          }),
        ),
      ),
    ),
  );
  $('heatmap').replaceChildren(table);
  $('problems').replaceChildren(...Object.entries(fh.problems).map(([k, why]) => h('li', { 'data-problem': k }, `${k}: ${why}`)));
}

// ---------------------------------------------------------------- equity and instruments

function drawEquity() {
  const p = model.panels;
  const points = p?.equity ?? [];
  const box = $('equity');
  const last = points.length ? points[points.length - 1][1] : p?.account?.netPnl;
  const lastEl = $('equity-last');
  lastEl.textContent = last !== undefined && last !== null ? `net ${signed(last)}` : '';
  lastEl.className = signClass(last);
  drawAccount(p?.account ?? null);
  if (points.length < 2) {
    box.replaceChildren(h('p', { class: 'hint' }, 'no equity samples yet'));
    return;
  }
  // Drawn at the panel's pixel size so the text is not stretched.
  const W = Math.max(200, box.clientWidth || 600);
  const H = 160;
  const pad = { l: 64, r: 8, t: 8, b: 16 };
  const t0 = points[0][0];
  const t1 = points[points.length - 1][0];
  let lo = Math.min(0, ...points.map((q) => q[1]));
  let hi = Math.max(0, ...points.map((q) => q[1]));
  if (hi - lo < 1e-9) {
    hi += 1;
    lo -= 1;
  }
  const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (H - pad.t - pad.b);
  const line = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  box.replaceChildren(
    s(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'net P&L over time' },
      s('line', { class: 'zero', x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0) }),
      s('polyline', { class: 'curve', points: line, style: last < 0 ? 'stroke: var(--bad)' : null }),
      s('text', { class: 'axis', x: 4, y: pad.t + 8 }, signed(hi)),
      s('text', { class: 'axis', x: 4, y: H - pad.b }, signed(lo)),
      s('text', { class: 'axis', x: pad.l, y: H - 3 }, clockTime(t0).slice(0, 8)),
      s('text', { class: 'axis', x: W - pad.r, y: H - 3, 'text-anchor': 'end' }, clockTime(t1).slice(0, 8)),
    ),
  );
}

function drawAccount(acc) {
  if (!acc) {
    $('account').replaceChildren();
    return;
  }
  const item = (label, value, cls) => h('span', {}, `${label} `, h('b', { class: cls ?? '' }, value));
  $('account').replaceChildren(
    item('cash', num(acc.cash)),
    item('net', signed(acc.netPnl), signClass(acc.netPnl)),
    item('realized', signed(acc.realizedPnl), signClass(acc.realizedPnl)),
    item('unrealized', signed(acc.unrealizedPnl), signClass(acc.unrealizedPnl)),
    item('fees', num(acc.fees)),
    item('gross', num(acc.grossExposure, 0)),
    item('net exp', num(acc.netExposure, 0)),
    item('working', String(acc.workingOrders)),
    ...optionRiskItems(model.panels?.optionRisk),
  );
}

/** The option risk beside its limits: `Δ 41 / 1,000`, past 80 % of a limit marked. */
function optionRiskItems(risk) {
  if (!risk) return [];
  const item = (label, a) => {
    const near = a.value !== null && Math.abs(a.value) >= 0.8 * a.limit;
    return h('span', { 'data-greek': label }, `${label} `, h('b', { class: near ? 'neg' : '' }, `${a.value === null ? '—' : num(a.value, 0)} / ${num(a.limit, 0)}`));
  };
  return [
    h('span', { class: 'hint' }, `${risk.underlying} options:`),
    item('Δ', risk.delta),
    item('Γ', risk.gamma),
    item('vega', risk.vega),
    item('θ', risk.theta),
    item('premium', risk.premiumAtRisk),
    item('contracts/expiry', risk.contractsInExpiry),
  ];
}

function drawPositions() {
  const rows = model.panels?.instruments ?? [];
  if (rows.length === 0) {
    $('positions').replaceChildren(h('p', { class: 'hint' }, 'no instruments yet'));
    return;
  }
  // Bars share one scale so positions compare across instruments.
  const scale = Math.max(1, ...rows.map((r) => Math.abs(r.position)));
  // A prediction column per horizon served, shortest first.
  const horizons = model.panels?.horizons?.length ? model.panels.horizons : [''];
  const cols = ['symbol', 'bid', 'ask', 'regime', ...horizons.map((h) => (h ? `pred ${h} bps` : 'pred bps')), 'position', '', 'avg', 'unrl P&L', 'real P&L'];
  $('positions').replaceChildren(
    h(
      'table',
      { class: 'grid', id: 'instruments' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        rows.map((r) => {
          const width = `${(Math.abs(r.position) / scale) * 50}%`;
          return h(
            'tr',
            { 'data-symbol': r.symbol, 'data-position': r.position },
            h('td', {}, h('b', {}, r.symbol)),
            h('td', { class: 'num' }, num(r.bid)),
            h('td', { class: 'num' }, num(r.ask)),
            h('td', {}, r.regime ?? '—'),
            horizons.map((_, k) => {
              const p = r.predictions[k] ?? null;
              return h('td', { class: `num ${signClass(p)}` }, p === null ? '—' : signed(p, 2));
            }),
            h('td', { class: `num ${signClass(r.position)}` }, String(r.position)),
            h('td', {}, h('div', { class: 'bar' }, r.position ? h('span', { class: r.position > 0 ? 'long' : 'short', style: `width:${width}` }) : null)),
            h('td', { class: 'num' }, num(r.averagePrice)),
            h('td', { class: `num ${signClass(r.unrealizedPnl)}` }, signed(r.unrealizedPnl)),
            h('td', { class: `num ${signClass(r.realizedPnl)}` }, signed(r.realizedPnl)),
          );
        }),
      ),
    ),
  );
}

/** Each model slot and what serves it: a model swapped into the wrong slot shows here. */
function drawModels() {
  const rows = model.panels?.models ?? [];
  if (rows.length === 0) {
    $('models').replaceChildren(h('p', { class: 'hint' }, 'no predictor'));
    return;
  }
  const cols = ['slot', 'model', 'family', 'input (frames x features)', 'previous', 'shadow', 'drifting', 'max input PSI', 'live RMSE', 'zero RMSE', 'held-out RMSE', 'hit rate', 'DM vs zero', 'bound'];
  const num = (v, digits = 2) => (v === null || v === undefined ? '—' : v.toFixed(digits));
  $('models').replaceChildren(
    h(
      'table',
      { class: 'grid', id: 'model-slots' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h(
        'tbody',
        {},
        rows.map((r) =>
          h(
            'tr',
            { 'data-slot': r.slot, 'data-family': r.family },
            h('td', {}, h('b', {}, r.slot)),
            h('td', {}, r.model),
            h('td', {}, r.family),
            h('td', { class: 'num' }, r.input),
            h('td', {}, r.previous ?? '—'),
            h('td', {}, r.shadow ?? '—'),
            h('td', { class: 'num' }, r.drift ? String(r.drift.drifting) : '—'),
            h('td', { class: 'num', title: r.drift?.worst ?? '' }, num(r.drift?.maxInputPsi)),
            h('td', { class: 'num', title: r.drift ? `${r.drift.resolved} resolved` : '' }, num(r.drift?.liveRmse, 3)),
            h('td', { class: 'num' }, num(r.drift?.zeroRmse, 3)),
            h('td', { class: 'num' }, num(r.drift?.heldOutRmse, 3)),
            h('td', { class: 'num' }, r.drift?.hitRate === null || r.drift?.hitRate === undefined ? '—' : `${(100 * r.drift.hitRate).toFixed(1)} %`),
            h('td', { class: 'num' }, num(r.drift?.dmVsZero)),
            h('td', { class: r.drift?.beyondBound ? 'bad' : '' }, r.drift ? (r.drift.beyondBound ? 'BEYOND: benched' : 'within') : '—'),
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- cluster

/** An age for people: `120 ms`, `3.2 s`, `4.5 min`; `—` for none. */
function age(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The shard workers, on a node that scales out: who owns which shard, how far behind, and what halts trading. */
function drawCluster() {
  const c = model.panels?.cluster;
  $('cluster-panel').hidden = !c;
  if (!c) return;
  const stale = c.shards.filter((r) => r.fresh === false).length;
  $('cluster-summary').textContent =
    `${c.shards.length} shards · ${c.workers.length} workers` + (stale ? ` · ${stale} stale` : '') + (c.statusAt === null ? ' · no status read yet' : ` · status ${clockTime(c.statusAt).slice(0, 8)}`);
  $('cluster-workers').replaceChildren(
    ...c.workers.map((w) => h('span', { 'data-worker': w.worker }, h('b', {}, w.worker), ` ${w.shards} shards · heartbeat ${age(w.heartbeatAgeMs)}`)),
  );
  const cols = ['shard', 'symbols', 'owner', 'epoch', 'age', 'fresh', 'lag', 'pending'];
  $('cluster').replaceChildren(
    h(
      'table',
      { class: 'grid', id: 'cluster-shards' },
      h('thead', {}, h('tr', {}, cols.map((col) => h('th', {}, col)))),
      h(
        'tbody',
        {},
        c.shards.map((r) =>
          h(
            'tr',
            { 'data-shard': r.shard, 'data-fresh': r.fresh === null ? '' : String(r.fresh) },
            h('td', {}, h('b', {}, String(r.shard))),
            h('td', { class: 'symbols', title: r.symbols.join(', ') }, r.symbols.length ? r.symbols.join(' ') : '—'),
            h('td', { class: r.owner === null ? 'neg' : '' }, r.owner ?? 'unowned'),
            h('td', { class: 'num' }, r.epoch === null ? '—' : String(r.epoch)),
            h('td', { class: 'num' }, age(r.ageMs)),
            h('td', { class: r.fresh === false ? 'neg' : r.fresh ? 'pos' : '' }, r.fresh === null ? '—' : r.fresh ? 'yes' : 'stale'),
            h('td', { class: 'num' }, r.lag === null ? '—' : String(r.lag)),
            h('td', { class: 'num' }, r.pending === null ? '—' : String(r.pending)),
          ),
        ),
      ),
    ),
  );
  $('cluster-problems').replaceChildren(...Object.entries(c.problems).map(([k, why]) => h('li', { 'data-problem': k }, `${k}: ${why}`)));
}

// ---------------------------------------------------------------- option chain

/** One colour per expiry, nearest first: the same in the surface and the tables' headings. */
const EXPIRY_COLOURS = ['#58a6ff', '#d2a8ff', '#3fb950', '#d29922', '#f85149'];
const expiryColour = (i) => EXPIRY_COLOURS[i % EXPIRY_COLOURS.length];
const pct = (v, digits = 1) => (v === null || v === undefined ? '—' : num(v * 100, digits));
const LINE_MARKS = { live: '●', requested: '◌', waiting: '○', refused: '×' };

function drawChain() {
  const c = model.chain;
  $('chain-panel').hidden = !c;
  if (!c) return;
  const item = (label, value) => h('span', {}, ` · ${label} `, h('b', {}, value));
  $('chain-summary').replaceChildren(
    h('b', {}, `${c.underlying} ${num(c.spot)}`),
    item('', c.phase),
    item('lines', `${c.lines.live}/${c.lines.wanted} live${c.lines.refused ? `, ${c.lines.refused} refused` : ''}`),
    ...c.expiries.map((e) => item(e.expiry, `ATM ${pct(e.atmIv)}% RR25 ${signed(e.riskReversal25 === null ? null : e.riskReversal25 * 100, 1)} fly ${signed(e.butterfly25 === null ? null : e.butterfly25 * 100, 1)}`)),
    item('net Δ 1%', `$${num(c.net.delta1Pct, 0)}`),
    item('vega', `$${num(c.net.vega, 0)}`),
    item('θ/day', `$${num(c.net.theta, 0)}`),
  );
  drawSurface(c);
  $('chain').replaceChildren(...c.expiries.map((e, i) => chainTable(e, i)));
}

/** strikes down; calls left, puts right: bid, ask, keel IV, delta, and a mark of each contract's line. */
function chainTable(e, index) {
  const side = (q, right) => {
    if (!q) return [h('td', { class: 'mark' }), h('td', {}, '—'), h('td', {}, '—'), h('td', {}, '—'), h('td', {}, '—')];
    const cell = (field, text) => h('td', { 'data-right': right, 'data-field': field, 'data-line': q.line }, text);
    const mark = h('td', { class: 'mark', 'data-line': q.line, title: `${q.line}${q.ivReason ? `; no mid IV: ${q.ivReason}` : ''}` }, LINE_MARKS[q.line] ?? '?');
    const cells = [cell('bid', num(q.bid)), cell('ask', num(q.ask)), cell('iv', pct(q.iv)), cell('delta', num(q.delta, 3))];
    return right === 'C' ? [mark, ...cells] : [...cells.reverse(), mark];
  };
  const head = ['', 'bid', 'ask', 'IV %', 'Δ', 'strike', 'Δ', 'IV %', 'ask', 'bid', ''];
  return h(
    'div',
    { class: 'chain-expiry', 'data-expiry': e.expiry },
    h(
      'h3',
      {},
      h('span', { class: 'swatch', style: `background:${expiryColour(index)}` }),
      `${e.expiry} · ${e.years === null ? '—' : `${num(e.years * 365, 2)} d`} · smile fit ${e.fitPoints ? `${e.fitPoints} quotes, rms $${num(e.fitRmsPrice, 3)}` : 'none yet'}`,
    ),
    h(
      'table',
      { class: 'chain' },
      h('thead', {}, h('tr', {}, h('th', { colspan: 5, style: 'text-align:center' }, 'calls'), h('th', {}), h('th', { colspan: 5, style: 'text-align:center' }, 'puts')), h('tr', {}, head.map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        e.strikes.map((s) =>
          h('tr', { 'data-strike': s.strike, class: s.strike === e.atmStrike ? 'atm' : null }, side(s.call, 'C'), h('td', { class: 'strike' }, num(s.strike)), side(s.put, 'P')),
        ),
      ),
    ),
  );
}

/**
 * IV (%) against strike: each expiry's fitted smile as a line, the band's
 * mid IVs as dots (hollow where the line is not live), the underlying as
 * a dashed line. Drawn at the panel's pixel size, like the equity curve.
 */
function drawSurface(c) {
  const box = $('chain-surface');
  const smiles = c.expiries.map((e) => e.smile.map(([k, v]) => [k, v * 100]));
  const dots = c.expiries.map((e) => e.strikes.flatMap((s) => [s.call, s.put].filter((q) => q && q.midIv !== null).map((q) => ({ k: s.strike, v: q.midIv * 100, live: q.line === 'live' }))));
  const curve = smiles.flat();
  const all = [...curve, ...dots.flat().map((d) => [d.k, d.v])];
  if (all.length < 2) {
    box.replaceChildren(h('p', { class: 'hint' }, c.phase === 'streaming' ? 'no implied volatilities yet' : `${c.phase}…`));
    return;
  }
  const W = Math.max(300, box.clientWidth || 800);
  const H = 240;
  const pad = { l: 44, r: 12, t: 10, b: 22 };
  const ks = all.map((p) => p[0]);
  const k0 = Math.min(...ks);
  const k1 = Math.max(...ks);
  // The fitted smiles set the scale: a stray mid far off them (a wide quote deep in the money) is pinned to the edge rather than flattening the picture.
  const vs = (curve.length >= 2 ? curve : all).map((p) => p[1]);
  let v0 = Math.min(...vs);
  let v1 = Math.max(...vs);
  const margin = Math.max(0.5, (v1 - v0) * 0.15);
  v0 = Math.max(0, v0 - margin);
  v1 += margin;
  const x = (k) => pad.l + ((k - k0) / Math.max(1e-9, k1 - k0)) * (W - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (Math.min(v1, Math.max(v0, v)) - v0) / (v1 - v0)) * (H - pad.t - pad.b);
  const xy = (k, v) => `${x(k).toFixed(1)},${y(v).toFixed(1)}`;
  box.replaceChildren(
    s(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'implied volatility against strike, per expiry' },
      s('rect', { class: 'frame', x: pad.l, y: pad.t, width: W - pad.l - pad.r, height: H - pad.t - pad.b }),
      c.spot !== null && c.spot >= k0 && c.spot <= k1 ? s('line', { class: 'spot', x1: x(c.spot), x2: x(c.spot), y1: pad.t, y2: H - pad.b }) : null,
      smiles.map((points, i) =>
        points.length >= 2 ? s('path', { class: 'smile', 'data-expiry': c.expiries[i].expiry, stroke: expiryColour(i), d: `M${points.map(([k, v]) => xy(k, v)).join('L')}` }) : null,
      ),
      dots.flatMap((list, i) =>
        list.map((d) => s('circle', { class: 'iv-dot', 'data-expiry': c.expiries[i].expiry, 'data-live': String(d.live), cx: x(d.k).toFixed(1), cy: y(d.v).toFixed(1), r: 2.5, fill: expiryColour(i), stroke: expiryColour(i) })),
      ),
      [0, 0.25, 0.5, 0.75, 1].flatMap((f) => {
        const v = v0 + f * (v1 - v0);
        return [s('line', { class: 'gridline', x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }), s('text', { class: 'axis', x: 4, y: y(v) + 3 }, `${num(v, 1)}%`)];
      }),
      s('text', { class: 'axis', x: pad.l, y: H - 6 }, num(k0)),
      s('text', { class: 'axis', x: W - pad.r, y: H - 6, 'text-anchor': 'end' }, num(k1)),
      c.spot !== null ? s('text', { class: 'axis', x: x(Math.min(k1, Math.max(k0, c.spot))), y: H - 6, 'text-anchor': 'middle' }, `${c.underlying} ${num(c.spot)}`) : null,
      c.expiries.map((e, i) => s('text', { class: 'axis', x: W - pad.r - 4, y: pad.t + 14 + 12 * i, 'text-anchor': 'end', style: `fill:${expiryColour(i)}` }, e.expiry)),
    ),
  );
}

// ---------------------------------------------------------------- event log

function eventItem(e) {
  return h(
    'li',
    { 'data-seq': e.seq, 'data-kind': e.kind, 'data-actor-ref': e.actor },
    h('time', {}, clockTime(e.at)),
    h('span', { class: 'kind' }, e.kind),
    h('span', { class: 'who', onclick: () => select(e.actor) }, e.actor),
    h('span', { class: 'text' }, e.text),
  );
}

function drawEvents() {
  const list = $('events');
  const fresh = ui.newEvents;
  ui.newEvents = 0;
  // After a snapshot the list is rebuilt; otherwise only the new lines go on top and the oldest fall off.
  if (ui.eventsRebuild || fresh >= MAX_EVENTS) {
    ui.eventsRebuild = false;
    list.replaceChildren(...model.events.map(eventItem));
  } else {
    list.prepend(...model.events.slice(0, fresh).map(eventItem));
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  }
  applyFilter();
}

function applyFilter() {
  const f = ui.filter;
  for (const li of $('events').children) li.hidden = f !== '' && !li.textContent.toLowerCase().includes(f);
}

// ---------------------------------------------------------------- start

$('event-filter').addEventListener('input', (e) => {
  ui.filter = e.target.value.trim().toLowerCase();
  applyFilter();
});
// The equity curve and the chain's surface are drawn at pixel size: redraw them when the page changes width.
window.addEventListener('resize', () => invalidate('equity', 'chain'));
setInterval(tick, 200);
connect();
