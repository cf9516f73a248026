// The relationship graph (#/graph): agents, tools, models, MCP servers, directives, policy
// rules and the host's registered artefacts from GET /api/graph (see API.md), drawn on a
// <canvas>. Layered layout computed here (columns by kind, ordered by a bounded number of
// barycentre sweeps, long columns wrapped), so it stays O(nodes + edges) at 10 000 nodes;
// drawing batches nodes and edges per colour, culls what is off screen and shows labels only
// when zoomed in enough to read them. Wheel zooms, drag pans, a click selects a node and lists
// its edges with their weights. Test hooks: window.__mission.graph.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, api, fmtInt, fmtMs, fmtUsd, markLoaded, every, M } = MD.kit;

  const WINDOWS = [[15, '15 min'], [60, '1 hour'], [360, '6 hours'], [1440, '24 hours'], [10080, '7 days']];
  // Columns, left to right; kinds not listed (registered artefacts) go in the last one.
  const LAYER = { directive: 0, agent: 1, tool: 2, model: 2, rule: 2, mcp_server: 3 };
  const LAST_LAYER = 4;
  const KIND_ORDER = ['directive', 'agent', 'tool', 'model', 'rule', 'mcp_server'];
  const KIND_COLOR = { agent: '--c1', tool: '--c2', model: '--c3', mcp_server: '--c4', directive: '--c5', rule: '--err' };
  const EDGE_COLOR = { calls_tool: '--c2', uses_model: '--c3', served_by: '--c4', child_thread: '--c1', handoff: '--c1', denied_by: '--err', alerted: '--c5', relation: '--c6' };
  const ROW = 22;           // world units between rows of a column
  const SUB = 180;          // between the wrapped sub-columns of a column
  const GAP = 260;          // between columns
  const PER_COLUMN = 80;    // rows before a column wraps
  const SWEEPS = 4;         // barycentre sweeps (bounded)
  const MAX_LABELS = 600;   // labels drawn at most per frame

  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
  const kindColor = (k) => cssVar(KIND_COLOR[k] || '--c6');

  // Positions every node: x by layer (wrapped into sub-columns), y by order in its group.
  function layout(nodes, edges) {
    const t0 = performance.now();
    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const adj = nodes.map(() => []);
    for (const e of edges) {
      const a = index.get(e.from), b = index.get(e.to);
      if (a === undefined || b === undefined) continue;
      adj[a].push(b);
      adj[b].push(a);
    }
    // Groups: one per kind, in column order; registered kinds share the last column.
    const groups = new Map();
    nodes.forEach((n, i) => {
      if (!groups.has(n.kind)) groups.set(n.kind, []);
      groups.get(n.kind).push(i);
    });
    const kinds = [...groups.keys()].sort((a, b) => {
      const la = LAYER[a] ?? LAST_LAYER, lb = LAYER[b] ?? LAST_LAYER;
      if (la !== lb) return la - lb;
      const ia = KIND_ORDER.indexOf(a), ib = KIND_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
    });
    const rank = new Float64Array(nodes.length);
    for (const k of kinds) groups.get(k).forEach((i, r) => { rank[i] = r; });
    // Barycentre sweeps: each node moves towards the mean rank of its neighbours.
    for (let s = 0; s < SWEEPS; s++) {
      for (const k of (s % 2 ? kinds.slice().reverse() : kinds)) {
        const g = groups.get(k);
        const key = new Float64Array(nodes.length);
        for (const i of g) {
          const nb = adj[i];
          if (!nb.length) { key[i] = rank[i]; continue; }
          let sum = 0;
          for (const j of nb) sum += rank[j] / Math.max(1, groups.get(nodes[j].kind).length);
          key[i] = (sum / nb.length) * g.length;
        }
        g.sort((a, b) => key[a] - key[b] || a - b);
        g.forEach((i, r) => { rank[i] = r; });
      }
    }
    const xs = new Float64Array(nodes.length), ys = new Float64Array(nodes.length);
    const layers = [];
    for (const k of kinds) {
      const l = LAYER[k] ?? LAST_LAYER;
      (layers[l] = layers[l] || []).push(k);
    }
    let x = 0, maxY = 0;
    const headers = [];
    for (const ks of layers) {
      if (!ks) continue;
      // The kinds of a layer stack vertically, each wrapped into sub-columns of PER_COLUMN.
      let y = 0, width = 0;
      for (const k of ks) {
        const g = groups.get(k);
        // A long column wraps into a block about 1.5 times as wide as it is high.
        const cols = g.length <= PER_COLUMN ? 1 : Math.ceil(Math.sqrt((1.5 * ROW * g.length) / SUB));
        const rows = Math.ceil(g.length / cols);
        headers.push({ kind: k, x, y: y - ROW, count: g.length });
        g.forEach((i, r) => {
          xs[i] = x + Math.floor(r / rows) * SUB;
          ys[i] = y + (r % rows) * ROW;
        });
        y += rows * ROW + ROW * 3;
        width = Math.max(width, cols * SUB);
      }
      maxY = Math.max(maxY, y);
      x += width + GAP - SUB;
    }
    return { xs, ys, index, headers, width: Math.max(1, x - GAP + SUB), height: Math.max(1, maxY), ms: performance.now() - t0 };
  }

  function graphPage(match, params) {
    let minutes = Number(params.get('minutes')) || 60;
    if (!WINDOWS.some(([m]) => m === minutes)) minutes = 60;
    let data = null, lay = null, selected = -1;
    const hidden = new Set((params.get('hide') || '').split(',').filter(Boolean));
    const view = { scale: 1, tx: 0, ty: 0 };
    const canvas = h('canvas', { class: 'graph-canvas', 'data-testid': 'graph-canvas', tabindex: '0', 'aria-label': 'Relationship graph' });
    const ctx = canvas.getContext('2d');
    const windowSel = h('select', { 'data-testid': 'graph-window', 'aria-label': 'Window' },
      WINDOWS.map(([m, label]) => h('option', { value: String(m) }, 'Last ' + label)));
    windowSel.value = String(minutes);
    let refit = true;       // fit the view on the next load (the first, or a new window)
    windowSel.addEventListener('change', () => { minutes = Number(windowSel.value); refit = true; load(); });
    const kindsBox = h('span', { class: 'graph-kinds', 'data-testid': 'graph-kinds' });
    const counts = h('span', { class: 'count-note', 'data-testid': 'graph-counts' });
    const note = h('div', { class: 'graph-note', 'data-testid': 'graph-truncated', hidden: true });
    const detail = h('div', { class: 'graph-detail', 'data-testid': 'graph-detail' },
      h('div', { class: 'empty-state' }, 'Click a node to see its edges.'));
    const fitBtn = h('button', { class: 'btn', type: 'button', 'data-testid': 'graph-fit', onclick: () => { fit(); draw(); } }, 'Fit');
    const search = h('input', { type: 'search', placeholder: 'Find a node', 'data-testid': 'graph-search', 'aria-label': 'Find a node' });
    search.addEventListener('change', () => {
      if (!data) return;
      const q = search.value.trim().toLowerCase();
      const i = q ? data.nodes.findIndex((n) => n.id.toLowerCase().includes(q) && !hidden.has(n.kind)) : -1;
      if (i >= 0) { select(i); centerOn(i); }
    });
    const legend = h('div', { class: 'graph-legend' },
      Object.entries(EDGE_COLOR).map(([k, c]) => h('span', { class: 'graph-legend-item' },
        h('span', { class: 'graph-swatch', style: { background: cssVar(c) } }), k.replace('_', ' '))));
    const el = h('div', { 'data-testid': 'page-graph' },
      h('div', { class: 'page-head' }, h('h1', null, 'Graph'), h('span', { class: 'sub' }, 'who calls what: agents, tools, models, MCP servers, directives, rules')),
      h('div', { class: 'filters' }, search, windowSel, fitBtn, kindsBox, counts),
      note,
      h('div', { class: 'graph-layout' },
        h('div', { class: 'panel graph-stage' }, canvas, legend),
        h('div', { class: 'panel graph-side' }, detail)));

    const hook = (M.graph = { nodes: [], edges: [], renderMs: null, layoutMs: null, draws: 0, drawn: null, select: (id) => select(indexOf(id)), screenPos, view });
    const indexOf = (id) => (lay && lay.index.has(id) ? lay.index.get(id) : -1);
    const visible = (i) => !hidden.has(data.nodes[i].kind);

    function screenPos(id) {
      const i = indexOf(id);
      if (i < 0) return null;
      const r = canvas.getBoundingClientRect();
      return { x: r.left + lay.xs[i] * view.scale + view.tx, y: r.top + lay.ys[i] * view.scale + view.ty };
    }

    function size() {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(200, canvas.parentElement ? canvas.parentElement.clientWidth - 2 : 800);
      const hgt = Math.max(360, Math.min(900, innerHeight - 260));
      canvas.style.width = w + 'px';
      canvas.style.height = hgt + 'px';
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(hgt * dpr);
      return { w, h: hgt, dpr };
    }
    function fit() {
      if (!lay) return;
      const { w, h: hh } = { w: canvas.clientWidth, h: canvas.clientHeight };
      const pad = 40;
      view.scale = Math.min(4, Math.max(0.005, Math.min((w - 2 * pad) / (lay.width + 140), (hh - 2 * pad) / (lay.height + ROW))));
      view.tx = pad + 20 * view.scale;
      view.ty = pad + ROW * view.scale;
    }
    function centerOn(i) {
      view.scale = Math.max(view.scale, 1);
      view.tx = canvas.clientWidth / 2 - lay.xs[i] * view.scale;
      view.ty = canvas.clientHeight / 2 - lay.ys[i] * view.scale;
      draw();
    }

    let pending = false;
    function draw() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; render(); });
    }
    // Draws the whole frame; its time is hook.renderMs.
    function render() {
      const t0 = performance.now();
      const dpr = window.devicePixelRatio || 1;
      const W = canvas.width, H = canvas.height;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, W, H);
      if (!data || !lay) return;
      const s = view.scale;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const sx = (i) => lay.xs[i] * s + view.tx, sy = (i) => lay.ys[i] * s + view.ty;
      const cw = W / dpr, ch = H / dpr;
      const inView = (x, y) => x > -50 && y > -50 && x < cw + 50 && y < ch + 50;
      const nodes = data.nodes, edges = data.edges;
      // Edges, one path per kind; the selected node's edges on top, stronger.
      const byKind = new Map();
      let drawnEdges = 0;
      for (let k = 0; k < edges.length; k++) {
        const e = edges[k];
        const a = e._a, b = e._b;
        if (a < 0 || b < 0 || !visible(a) || !visible(b)) continue;
        const x1 = sx(a), y1 = sy(a), x2 = sx(b), y2 = sy(b);
        if ((x1 < 0 && x2 < 0) || (y1 < 0 && y2 < 0) || (x1 > cw && x2 > cw) || (y1 > ch && y2 > ch)) continue;
        if (!byKind.has(e.kind)) byKind.set(e.kind, []);
        byKind.get(e.kind).push(k);
        drawnEdges++;
      }
      const dense = drawnEdges > 3000;
      ctx.globalAlpha = selected >= 0 ? 0.15 : dense ? 0.25 : 0.55;
      for (const [kind, list] of byKind) {
        ctx.strokeStyle = cssVar(EDGE_COLOR[kind] || '--c6');
        ctx.lineWidth = dense ? 0.6 : 1.2;
        ctx.beginPath();
        for (const k of list) {
          const e = edges[k];
          const x1 = sx(e._a), y1 = sy(e._a), x2 = sx(e._b), y2 = sy(e._b);
          ctx.moveTo(x1, y1);
          if (Math.abs(x1 - x2) < 1) ctx.quadraticCurveTo(x1 + 40 + Math.abs(y2 - y1) * 0.2, (y1 + y2) / 2, x2, y2);
          else ctx.lineTo(x2, y2);
        }
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
      if (selected >= 0) {
        for (const e of edges) {
          if ((e._a !== selected && e._b !== selected) || !visible(e._a) || !visible(e._b)) continue;
          ctx.strokeStyle = cssVar(EDGE_COLOR[e.kind] || '--c6');
          ctx.lineWidth = 1 + Math.min(5, Math.log10(1 + e.calls) * 1.5);
          ctx.beginPath();
          ctx.moveTo(sx(e._a), sy(e._a));
          ctx.lineTo(sx(e._b), sy(e._b));
          ctx.stroke();
        }
      }
      // Nodes, one path per kind; tiny squares when zoomed out (level of detail).
      const r = Math.max(1.5, Math.min(7, 6 * s));
      const byNodeKind = new Map();
      let drawnNodes = 0;
      for (let i = 0; i < nodes.length; i++) {
        if (!visible(i)) continue;
        const x = sx(i), y = sy(i);
        if (!inView(x, y)) continue;
        if (!byNodeKind.has(nodes[i].kind)) byNodeKind.set(nodes[i].kind, []);
        byNodeKind.get(nodes[i].kind).push(i);
        drawnNodes++;
      }
      for (const [kind, list] of byNodeKind) {
        ctx.fillStyle = kindColor(kind);
        ctx.beginPath();
        if (r < 3) {
          for (const i of list) ctx.rect(sx(i) - r, sy(i) - r, 2 * r, 2 * r);
        } else {
          for (const i of list) { ctx.moveTo(sx(i) + r, sy(i)); ctx.arc(sx(i), sy(i), r, 0, Math.PI * 2); }
        }
        ctx.fill();
      }
      if (selected >= 0 && visible(selected)) {
        ctx.strokeStyle = cssVar('--text');
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(sx(selected), sy(selected), r + 4, 0, Math.PI * 2);
        ctx.stroke();
      }
      // Labels only when rows are far enough apart to read them, at most MAX_LABELS.
      let labels = 0;
      ctx.fillStyle = cssVar('--text');
      if (ROW * s >= 11) {
        ctx.font = '12px system-ui, sans-serif';
        ctx.textBaseline = 'middle';
        outer: for (const list of byNodeKind.values()) {
          for (const i of list) {
            if (labels >= MAX_LABELS) break outer;
            ctx.fillText(nodes[i].name.length > 28 ? nodes[i].name.slice(0, 27) + '…' : nodes[i].name, sx(i) + r + 4, sy(i));
            labels++;
          }
        }
      }
      ctx.font = '600 12px system-ui, sans-serif';
      ctx.fillStyle = cssVar('--muted');
      for (const hd of lay.headers) {
        if (hidden.has(hd.kind) || s < 0.25) continue;
        const x = hd.x * s + view.tx, y = hd.y * s + view.ty;
        if (inView(x, y)) ctx.fillText(hd.kind.replace('_', ' ') + ' (' + fmtInt(hd.count) + ')', x - 6, y);
      }
      hook.renderMs = performance.now() - t0;
      hook.draws++;
      hook.drawn = { nodes: drawnNodes, edges: drawnEdges, labels };
      canvas.dataset.draws = String(hook.draws);
      canvas.dataset.drawnNodes = String(drawnNodes);
    }

    function select(i) {
      selected = i;
      canvas.dataset.selected = i >= 0 ? data.nodes[i].id : '';
      renderDetail();
      draw();
    }
    function renderDetail() {
      if (selected < 0 || !data) {
        detail.replaceChildren(h('div', { class: 'empty-state' }, 'Click a node to see its edges.'));
        return;
      }
      const n = data.nodes[selected];
      const mine = data.edges.filter((e) => e._a === selected || e._b === selected)
        .sort((a, b) => b.calls - a.calls);
      const attrs = Object.entries(n.attributes || {});
      detail.replaceChildren(h('div', null,
        h('div', { class: 'graph-detail-head' },
          h('span', { class: 'graph-swatch', style: { background: kindColor(n.kind) } }),
          h('strong', { 'data-testid': 'graph-selected' }, n.name), ' ', h('span', { class: 'sub' }, n.kind + (n.registered ? ' · registered' : ''))),
        h('div', { class: 'sub' }, fmtInt(n.calls) + ' calls · ' + fmtInt(n.errors) + ' errors · ' + fmtUsd(n.cost_usd)),
        n.kind === 'agent' ? h('div', null, h('a', { href: '#/threads?agent=' + encodeURIComponent(n.name) }, 'Threads of ' + n.name)) : null,
        attrs.length ? h('dl', { class: 'graph-attrs' }, attrs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])) : null,
        h('table', { class: 'data', 'data-testid': 'graph-edges' },
          h('thead', null, h('tr', null, h('th', null, 'Edge'), h('th', null, 'Calls'), h('th', null, 'Errors'), h('th', null, 'Cost'), h('th', null, 'p95'))),
          h('tbody', null, mine.slice(0, 500).map((e) => {
            const out = e._a === selected;
            const other = data.nodes[out ? e._b : e._a];
            return h('tr', { 'data-testid': 'graph-edge-row', 'data-kind': e.kind, 'data-calls': String(e.calls), 'data-other': other.id, class: 'clickable',
              onclick: () => { select(out ? e._b : e._a); } },
            h('td', null, (out ? '→ ' : '← ') + other.name, h('div', { class: 'sub' }, e.kind.replace('_', ' ') + (e.label ? ' · ' + e.label : ''))),
            h('td', { class: 'num' }, fmtInt(e.calls)),
            h('td', { class: 'num' }, fmtInt(e.errors)),
            h('td', { class: 'num' }, fmtUsd(e.cost_usd)),
            h('td', { class: 'num' }, e.p95_ms === null || e.p95_ms === undefined ? '–' : fmtMs(e.p95_ms)));
          }))),
        mine.length > 500 ? h('div', { class: 'sub' }, fmtInt(mine.length - 500) + ' more edges') : null));
    }

    function fillKinds() {
      const present = new Map();
      for (const n of data.nodes) present.set(n.kind, (present.get(n.kind) || 0) + 1);
      const kinds = [...present.keys()].sort((a, b) => (LAYER[a] ?? LAST_LAYER) - (LAYER[b] ?? LAST_LAYER) || (a < b ? -1 : 1));
      kindsBox.replaceChildren(...kinds.map((k) => {
        const box = h('input', { type: 'checkbox', 'data-testid': 'graph-kind-' + k, checked: !hidden.has(k) });
        box.addEventListener('change', () => {
          if (box.checked) hidden.delete(k); else hidden.add(k);
          updateCounts();
          draw();
        });
        return h('label', { class: 'graph-kind' }, box, h('span', { class: 'graph-swatch', style: { background: kindColor(k) } }), k.replace('_', ' ') + ' ' + fmtInt(present.get(k)));
      }));
    }
    function updateCounts() {
      const shownNodes = data.nodes.filter((n) => !hidden.has(n.kind)).length;
      const shownEdges = data.edges.filter((e) => e._a >= 0 && e._b >= 0 && visible(e._a) && visible(e._b)).length;
      counts.textContent = fmtInt(shownNodes) + ' nodes · ' + fmtInt(shownEdges) + ' edges';
      counts.dataset.nodes = String(shownNodes);
      counts.dataset.edges = String(shownEdges);
    }

    async function load() {
      let answer;
      try {
        answer = await api('/api/graph', { minutes });
      } catch (_) {
        return;
      }
      const keep = selected >= 0 && data ? data.nodes[selected].id : null;
      data = answer;
      lay = layout(data.nodes, data.edges);
      for (const e of data.edges) {
        e._a = lay.index.has(e.from) ? lay.index.get(e.from) : -1;
        e._b = lay.index.has(e.to) ? lay.index.get(e.to) : -1;
      }
      hook.nodes = data.nodes;
      hook.edges = data.edges;
      hook.layoutMs = lay.ms;
      hook.truncated = data.truncated;
      note.hidden = !data.truncated;
      note.textContent = data.truncated
        ? 'Showing the busiest ' + fmtInt(data.nodes.length) + ' nodes: ' + fmtInt(data.nodes_cut) + ' nodes and ' + fmtInt(data.edges_cut) + ' edges were left out.'
        : '';
      fillKinds();
      updateCounts();
      size();
      // A refresh keeps where the user panned and zoomed to.
      if (refit) fit();
      refit = false;
      selected = keep ? indexOf(keep) : -1;
      renderDetail();
      render();
      canvas.dataset.version = String((Number(canvas.dataset.version) || 0) + 1);
      markLoaded('graph');
    }

    // Pan (drag), zoom (wheel, around the pointer), select (click).
    let drag = null;
    canvas.addEventListener('pointerdown', (ev) => {
      drag = { x: ev.clientX, y: ev.clientY, tx: view.tx, ty: view.ty, moved: false };
      canvas.setPointerCapture(ev.pointerId);
    });
    canvas.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      view.tx = drag.tx + dx;
      view.ty = drag.ty + dy;
      draw();
    });
    canvas.addEventListener('pointerup', (ev) => {
      const d = drag;
      drag = null;
      if (!d || d.moved || !data) return;
      const rect = canvas.getBoundingClientRect();
      const x = (ev.clientX - rect.left - view.tx) / view.scale, y = (ev.clientY - rect.top - view.ty) / view.scale;
      const tol = Math.max(8, 10 / view.scale);
      let best = -1, bestD = Infinity;
      for (let i = 0; i < data.nodes.length; i++) {
        if (!visible(i)) continue;
        const dx = lay.xs[i] - x, dy = lay.ys[i] - y;
        if (Math.abs(dx) > tol || Math.abs(dy) > tol) continue;
        const dd = dx * dx + dy * dy;
        if (dd < bestD) { bestD = dd; best = i; }
      }
      select(best);
    });
    canvas.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const rect = canvas.getBoundingClientRect();
      const px = ev.clientX - rect.left, py = ev.clientY - rect.top;
      const f = Math.exp(-ev.deltaY * 0.0015);
      const next = Math.min(8, Math.max(0.002, view.scale * f));
      view.tx = px - (px - view.tx) * (next / view.scale);
      view.ty = py - (py - view.ty) * (next / view.scale);
      view.scale = next;
      draw();
    }, { passive: false });
    canvas.addEventListener('keydown', (ev) => {
      const step = 60;
      if (ev.key === 'ArrowLeft') view.tx += step;
      else if (ev.key === 'ArrowRight') view.tx -= step;
      else if (ev.key === 'ArrowUp') view.ty += step;
      else if (ev.key === 'ArrowDown') view.ty -= step;
      else if (ev.key === '+' || ev.key === '=') view.scale *= 1.25;
      else if (ev.key === '-') view.scale /= 1.25;
      else if (ev.key === 'Escape') { select(-1); return; }
      else return;
      ev.preventDefault();
      draw();
    });

    load();
    // Inside an agent the graph keeps up, at a pace a 10 000-node layout allows.
    every(30000, () => { if (!drag) load(); });
    return {
      el,
      title: 'Graph',
      resize() { if (lay) { size(); draw(); } },
    };
  }

  MD.view({ name: 'graph', nav: 'graph', match: /^\/graph\/?$/, page: graphPage });
})();
