// The permission-flow view: a thread panel drawing who allowed what. On the left, the thread's
// lineage (root first; a running thread's, from /api/threads/{id}/permissions), each level with
// its permission set; on the right, every (action, resource) the thread asked for, with its
// allowed and denied counts. A solid edge runs from the thread to each resource (red where a
// request was denied); a dashed edge runs from the ancestor that narrowed a denial to it, with
// the rule and the escalation's severity. Over a store on disk nothing runs, so the lineage is
// the thread alone and the edges come from its recorded decisions.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, svgEl, shortId, fmtInt } = MD.kit;
  // Resources drawn at most; the rest are counted under the drawing.
  const MAX_RESOURCES = 40;
  const LEVEL_H = 58, LEVEL_GAP = 26, RES_H = 30, RES_GAP = 8, LEFT_W = 250, RIGHT_W = 250, MID = 170;

  function text(x, y, value, cls) {
    const t = svgEl('text');
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    if (cls) t.setAttribute('class', cls);
    t.textContent = value;
    return t;
  }
  function rect(x, y, w, hgt, cls) {
    const r = svgEl('rect');
    for (const [k, v] of Object.entries({ x, y, width: w, height: hgt, rx: 6, class: cls })) r.setAttribute(k, v);
    return r;
  }
  function curve(x1, y1, x2, y2, cls) {
    const p = svgEl('path');
    const mx = (x1 + x2) / 2;
    p.setAttribute('d', `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`);
    p.setAttribute('class', cls);
    return p;
  }
  const clip = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

  MD.threadPanel((data, ctx) => {
    const decisions = data.permissions || [];
    const lineage = data.lineage && data.lineage.explanation;
    const recent = (data.lineage && data.lineage.recent) || [];
    if (!decisions.length && !(lineage && lineage.chain.some((l) => l.permissions))) return null;

    // The levels, root first; without a running lineage, the thread alone.
    const t = data.thread || {};
    const levels = lineage && lineage.chain.length ? lineage.chain
      : [{ thread_id: ctx.id, agent: t.agent || '–', depth: 0, permissions: null }];
    const own = levels[levels.length - 1];

    // (action, resource) → counts, and the level that narrowed its denials.
    const byResource = new Map();
    for (const d of decisions) {
      const key = d.action + ':' + d.resource;
      let r = byResource.get(key);
      if (!r) { r = { action: d.action, resource: d.resource, allow: 0, deny: 0, narrowed: null }; byResource.set(key, r); }
      if (d.decision === 'allow') r.allow++; else r.deny++;
    }
    for (const d of recent) {
      const r = byResource.get(d.action + ':' + d.resource);
      if (r && d.narrowed_by && d.decision === 'deny') {
        r.narrowed = { thread_id: d.narrowed_by, depth: Number(d.ancestor_depth), rule: d.lineage_rule || d.rule, escalation: d.escalation || null };
      }
    }
    const resources = [...byResource.values()].sort((a, b) => b.deny - a.deny || (b.allow + b.deny) - (a.allow + a.deny));
    const shown = resources.slice(0, MAX_RESOURCES);

    const leftH = levels.length * LEVEL_H + (levels.length - 1) * LEVEL_GAP;
    const rightH = shown.length * RES_H + Math.max(shown.length - 1, 0) * RES_GAP;
    const height = Math.max(leftH, rightH) + 16;
    const width = LEFT_W + MID + RIGHT_W;
    const svg = svgEl('svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('class', 'perm-flow-svg');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'Permission flow: lineage levels and the resources they allowed or denied');
    svg.style.maxWidth = width + 'px';

    const levelY = (i) => 8 + (height - 16 - leftH) / 2 + i * (LEVEL_H + LEVEL_GAP);
    const resY = (i) => 8 + (height - 16 - rightH) / 2 + i * (RES_H + RES_GAP);
    const edges = svgEl('g');
    svg.append(edges);
    levels.forEach((l, i) => {
      const y = levelY(i);
      const g = svgEl('g');
      g.setAttribute('data-testid', 'perm-flow-level');
      g.setAttribute('data-depth', String(l.depth));
      g.setAttribute('data-thread-id', l.thread_id);
      const narrowing = lineage && lineage.narrowed_by && lineage.narrowed_by.depth === l.depth;
      g.append(rect(0, y, LEFT_W, LEVEL_H, 'pf-level' + (l === own ? ' own' : '') + (narrowing ? ' narrowing' : '')));
      g.append(text(10, y + 18, clip(l.agent + ' · ' + shortId(l.thread_id), 34), 'pf-title'));
      const set = l.permissions ? (l.permissions.name ? l.permissions.name + ': ' : '') + l.permissions.allow.join(', ') : (lineage ? 'inherits' : 'recorded decisions');
      g.append(text(10, y + 36, clip(set, 38), 'pf-sub'));
      if (l.permissions && l.permissions.severity) g.append(text(10, y + 51, 'escalates as ' + l.permissions.severity, 'pf-sub'));
      const title = svgEl('title');
      title.textContent = l.agent + ' ' + l.thread_id + '\n' + set;
      g.append(title);
      if (i > 0) {
        const line = svgEl('path');
        line.setAttribute('d', `M${LEFT_W / 2},${levelY(i - 1) + LEVEL_H} L${LEFT_W / 2},${y}`);
        line.setAttribute('class', 'pf-down');
        edges.append(line);
      }
      svg.append(g);
    });
    const ownY = levelY(levels.length - 1) + LEVEL_H / 2;
    const depthIndex = new Map(levels.map((l, i) => [l.depth, i]));
    shown.forEach((r, i) => {
      const y = resY(i);
      const decision = r.deny ? 'deny' : 'allow';
      const g = svgEl('g');
      g.setAttribute('data-testid', 'perm-flow-resource');
      g.setAttribute('data-resource', r.resource);
      g.setAttribute('data-action', r.action);
      g.setAttribute('data-decision', decision);
      g.setAttribute('data-allowed', String(r.allow));
      g.setAttribute('data-denied', String(r.deny));
      g.append(rect(LEFT_W + MID, y, RIGHT_W, RES_H, 'pf-res ' + decision));
      g.append(text(LEFT_W + MID + 10, y + 19, clip(r.action + ' ' + r.resource, 26), 'pf-title'));
      g.append(text(LEFT_W + MID + RIGHT_W - 8, y + 19, (r.allow ? '✓' + r.allow : '') + (r.deny ? ' ✕' + r.deny : ''), 'pf-count'));
      svg.append(g);
      edges.append(curve(LEFT_W, ownY, LEFT_W + MID, y + RES_H / 2, 'pf-edge ' + decision));
      if (r.narrowed && depthIndex.has(r.narrowed.depth) && depthIndex.get(r.narrowed.depth) !== levels.length - 1) {
        const from = levelY(depthIndex.get(r.narrowed.depth)) + LEVEL_H / 2;
        const e = curve(LEFT_W, from, LEFT_W + MID, y + RES_H / 2, 'pf-edge narrowed');
        e.setAttribute('data-testid', 'perm-flow-narrowed');
        e.setAttribute('data-depth', String(r.narrowed.depth));
        e.setAttribute('data-resource', r.resource);
        const title = svgEl('title');
        title.textContent = 'denied by depth ' + r.narrowed.depth + ' (' + r.narrowed.rule + ')' + (r.narrowed.escalation ? ', escalated as ' + r.narrowed.escalation : '');
        e.append(title);
        edges.append(e);
        edges.append(text(LEFT_W + MID / 2, (from + y + RES_H / 2) / 2 - 4, clip(r.narrowed.rule || '', 22), 'pf-rule'));
      }
    });
    const denied = resources.reduce((n, r) => n + r.deny, 0);
    return h('div', { class: 'panel', 'data-testid': 'perm-flow', style: { marginTop: '16px' } },
      h('div', { class: 'panel-head' }, h('h2', null, 'Permission flow'),
        h('span', { class: 'hint' }, fmtInt(resources.length) + ' resource(s) · ' + fmtInt(denied) + ' denied' + (lineage ? '' : ' · lineage shown while the thread runs'))),
      h('div', { class: 'panel-body perm-flow-body' }, svg,
        resources.length > shown.length ? h('div', { class: 'hint', 'data-testid': 'perm-flow-more' }, '… and ' + fmtInt(resources.length - shown.length) + ' more resources') : null));
  });
})();
