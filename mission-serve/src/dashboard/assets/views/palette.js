// The command palette (Ctrl+K or ⌘K) and keyboard navigation (J/K in lists), registered with
// app.js through window.MissionDashboard. The palette finds pages, saved views, threads,
// agents, operations and directives, and runs the actions this token's role allows: a
// viewer's (save or copy the view, switch the theme) at once; an operator's (run a directive,
// decide an approval) only when the server said this token may act (`can_control` of
// /api/control), otherwise it refuses in the palette and sends nothing.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, api, apiPost, shortId, fmtAgo, nsToMs, M } = MD.kit;

  // Saved views: name → the hash of a view (its page, filters and time range), in
  // localStorage. Bounded: the oldest goes past MAX_SAVED.
  const SAVED_KEY = 'mission.views';
  const MAX_SAVED = 50;
  function savedViews() {
    try {
      const list = JSON.parse(localStorage.getItem(SAVED_KEY) || '[]');
      return Array.isArray(list) ? list.filter((v) => v && typeof v.name === 'string' && typeof v.hash === 'string') : [];
    } catch (_) { return []; }
  }
  function storeViews(list) {
    try { localStorage.setItem(SAVED_KEY, JSON.stringify(list.slice(-MAX_SAVED))); } catch (_) { /* no storage */ }
  }
  function saveView(name) {
    const list = savedViews().filter((v) => v.name !== name);
    list.push({ name, hash: location.hash || '#/' });
    storeViews(list);
  }

  // What the server tells about this token, refreshed each time the palette opens (at most
  // every 10 s): the directives, the pending approvals, whether it may act, a few agents and
  // the operations of the last hour.
  let facts = null;
  let factsAt = 0;
  async function loadFacts() {
    if (facts && Date.now() - factsAt < 10000) return facts;
    const quiet = [400, 403, 404, 409];
    const [control, overview, threads] = await Promise.all([
      api('/api/control', null, quiet).catch(() => null),
      api('/api/overview', { minutes: 60 }, quiet).catch(() => null),
      api('/api/threads', { limit: 200 }, quiet).catch(() => null),
    ]);
    facts = {
      canControl: !!(control && control.can_control),
      live: !!(control && control.live),
      directives: (control && control.directives) || [],
      approvals: ((control && control.approvals) || []).filter((a) => a.state === 'pending'),
      operations: (overview && overview.operations) || [],
      agents: [...new Set(((threads && threads.threads) || []).map((t) => t.agent).filter(Boolean))].sort(),
    };
    factsAt = Date.now();
    return facts;
  }

  // A command: `group` (shown on the right), `label`, `role` ('viewer' or 'operator'), `run`.
  const go = (hash) => () => { location.hash = hash; };
  function staticCommands() {
    const pages = [...document.querySelectorAll('.tabs a[href]')].map((a) => ({
      group: 'Page', label: a.textContent.trim(), role: 'viewer', run: go(a.getAttribute('href')), id: 'page:' + a.dataset.route,
    }));
    const views = savedViews().map((v) => ({ group: 'Saved view', label: v.name, detail: v.hash, role: 'viewer', run: go(v.hash), id: 'view:' + v.name }));
    return pages.concat(views, [
      { id: 'save-view', group: 'Action', label: 'Save this view…', role: 'viewer', run: () => {
        const name = (window.prompt('Name this view (its page, filters and time range):', '') || '').trim();
        if (name) { saveView(name); return 'Saved “' + name + '”.'; }
        return null;
      } },
      { id: 'copy-link', group: 'Action', label: 'Copy a link to this view', role: 'viewer', run: async () => {
        const url = location.origin + location.pathname + location.hash;
        try { await navigator.clipboard.writeText(url); return 'Link copied.'; } catch (_) { return url; }
      } },
      { id: 'theme', group: 'Action', label: 'Switch light / dark theme', role: 'viewer', run: () => {
        document.querySelector('[data-testid="theme-toggle"]').click();
      } },
    ]);
  }
  function factCommands(f) {
    const out = [];
    for (const a of f.agents) out.push({ id: 'agent:' + a, group: 'Agent', label: a, role: 'viewer', run: go('#/threads?agent=' + encodeURIComponent(a)) });
    for (const o of f.operations) {
      out.push({ id: 'op:' + o.kind + ':' + o.name, group: 'Operation', label: o.name, detail: o.kind + ' · ' + o.count + ' calls', role: 'viewer',
        run: go('#/?minutes=60&op=' + encodeURIComponent(o.kind + '/' + o.name)) });
    }
    for (const d of f.directives) {
      out.push({ id: 'directive:' + d.name, group: 'Directive', label: 'Run directive ' + d.name, detail: d.condition, role: 'operator', run: async () => {
        const run = await apiPost('/api/directives/' + encodeURIComponent(d.name) + '/run', {});
        facts = null;
        return 'Run ' + run.id + ' of ' + d.name + ': ' + run.outcome + '.';
      } });
    }
    for (const a of f.approvals) {
      for (const decision of ['approve', 'reject']) {
        out.push({ id: decision + ':' + a.id, group: 'Approval', label: (decision === 'approve' ? 'Approve' : 'Reject') + ' ' + a.actions.join(', ') + ' (' + a.directive + ')',
          detail: a.reason, role: 'operator', run: async () => {
            const done = await apiPost('/api/approvals/' + a.id, { decision, note: 'from the command palette' });
            facts = null;
            return 'Approval ' + a.id + ' ' + done.state + '.';
          } });
      }
    }
    return out;
  }

  // Fuzzy match: every character of the query in order; earlier, denser matches score higher.
  function score(query, text) {
    if (!query) return 1;
    const t = text.toLowerCase();
    const at = t.indexOf(query);
    if (at >= 0) return 1000 - at;
    let i = 0, s = 0, last = -1;
    for (let j = 0; j < t.length && i < query.length; j++) {
      if (t[j] === query[i]) { s += last === j - 1 ? 5 : 1; last = j; i++; }
    }
    return i === query.length ? s : 0;
  }

  let box = null;
  function close() {
    if (!box) return;
    box.remove();
    box = null;
    M.palette = null;
  }
  function open() {
    if (box) { box.querySelector('input').focus(); return; }
    const input = h('input', { type: 'text', placeholder: 'Find threads, agents, operations, directives, views… or run an action', 'data-testid': 'palette-input', 'aria-label': 'Command', autocomplete: 'off', spellcheck: 'false' });
    const list = h('ul', { class: 'palette-list', role: 'listbox', 'data-testid': 'palette-list' });
    const note = h('div', { class: 'palette-note', 'data-testid': 'palette-note', role: 'status' });
    const panel = h('div', { class: 'palette', role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Command palette', 'data-testid': 'palette' },
      input, list, note, h('div', { class: 'palette-keys' }, '↑↓ move · Enter run · Esc close · J/K move in lists'));
    box = h('div', { class: 'palette-backdrop', onclick: (e) => { if (e.target === box) close(); } }, panel);
    document.body.append(box);
    M.palette = { ready: false };
    let commands = staticCommands();
    let shown = [];
    let active = 0;
    let threadSeq = 0;
    let threadHits = [];
    function render() {
      const q = input.value.trim().toLowerCase();
      shown = commands.concat(threadHits)
        .map((c) => [c, c.found ? 2000 : Math.max(score(q, c.label), score(q, c.group + ' ' + c.label) / 2)])
        .filter(([, s]) => s > 0)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 40)
        .map(([c]) => c);
      active = Math.min(active, Math.max(shown.length - 1, 0));
      list.replaceChildren(...shown.map((c, i) => {
        const refused = c.role === 'operator' && !(facts && facts.canControl);
        return h('li', { role: 'option', class: 'palette-item' + (i === active ? ' active' : '') + (refused ? ' refused' : ''), 'aria-selected': i === active ? 'true' : 'false',
          'data-testid': 'palette-item', 'data-id': c.id, 'data-role': c.role, onclick: () => { active = i; runActive(); }, onmousemove: () => { if (active !== i) { active = i; paint(); } } },
        h('span', { class: 'palette-label' }, c.label), c.detail ? h('span', { class: 'palette-detail' }, c.detail) : null,
        h('span', { class: 'palette-group' }, refused ? c.group + ' · operator' : c.group));
      }));
      if (!shown.length) list.append(h('li', { class: 'palette-empty' }, 'Nothing matches.'));
    }
    function paint() {
      [...list.children].forEach((li, i) => { li.classList.toggle('active', i === active); li.setAttribute('aria-selected', i === active ? 'true' : 'false'); });
      const li = list.children[active];
      if (li && li.scrollIntoView) li.scrollIntoView({ block: 'nearest' });
    }
    function say(text, kind) {
      note.textContent = text || '';
      note.dataset.kind = kind || '';
    }
    async function runActive() {
      const c = shown[active];
      if (!c) return;
      if (c.role === 'operator' && !(facts && facts.canControl)) {
        // Refused here, before any request: the server would refuse it too.
        say(facts && facts.live ? 'Refused: “' + c.label + '” needs an operator token; this token may only view.'
          : 'Refused: “' + c.label + '” acts on a running agent; nothing runs here.', 'refused');
        M.palette.refused = c.id;
        return;
      }
      try {
        const answer = await c.run();
        M.palette && (M.palette.ran = c.id);
        if (typeof answer === 'string') { say(answer, 'ok'); render(); } else close();
      } catch (e) {
        say('Failed: ' + e.message, 'refused');
      }
    }
    const findThreads = async () => {
      const q = input.value.trim();
      const my = ++threadSeq;
      if (q.length < 2) { threadHits = []; return; }
      const d = await api('/api/threads', { q, limit: 10 }, [400, 404]).catch(() => null);
      if (my !== threadSeq || !d) return;
      // The server matched these on the query (id, agent or tenant): listed first.
      threadHits = (d.threads || []).map((t) => ({ id: 'thread:' + t.thread_id, group: 'Thread', found: true, role: 'viewer',
        label: shortId(t.thread_id) + ' · ' + (t.agent || '–'), detail: t.status + ' · ' + fmtAgo(nsToMs(t.start_ns)), run: go('#/threads/' + encodeURIComponent(t.thread_id)) }));
      render();
    };
    let timer = null;
    input.addEventListener('input', () => {
      active = 0;
      say('');
      render();
      clearTimeout(timer);
      timer = setTimeout(findThreads, 150);
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') { e.preventDefault(); active = Math.min(active + 1, shown.length - 1); paint(); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); active = Math.max(active - 1, 0); paint(); }
      else if (e.key === 'Enter') { e.preventDefault(); runActive(); }
      else if (e.key === 'Escape') { e.preventDefault(); close(); }
    });
    render();
    input.focus();
    loadFacts().then((f) => {
      if (!box) return;
      commands = staticCommands().concat(factCommands(f));
      render();
      M.palette.ready = true;
    });
  }

  // J/K (and ↓/↑ with no field focused) move through the rows of the page's list; Enter or O
  // opens the row. A row is a table body's row or a log line.
  const ROWS = '#app table.data tbody tr, #app .log-list > [data-testid]';
  function moveRow(step) {
    const rows = [...document.querySelectorAll(ROWS)].filter((r) => r.offsetParent !== null);
    if (!rows.length) return;
    let at = rows.findIndex((r) => r.classList.contains('kb-current'));
    at = at < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(Math.max(at + step, 0), rows.length - 1);
    rows.forEach((r) => r.classList.remove('kb-current'));
    const row = rows[at];
    row.classList.add('kb-current');
    if (!row.hasAttribute('tabindex')) row.setAttribute('tabindex', '-1');
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: 'nearest' });
  }
  function openRow() {
    const row = document.querySelector('#app .kb-current');
    if (!row) return false;
    const link = row.querySelector('a[href]');
    if (link) link.click(); else row.click();
    return true;
  }
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === 'k' || e.key === 'K')) {
      e.preventDefault();
      if (box) close(); else open();
      return;
    }
    if (box || e.ctrlKey || e.metaKey || e.altKey || typing(document.activeElement)) return;
    if (e.key === 'j' || e.key === 'J') { e.preventDefault(); moveRow(1); }
    else if (e.key === 'k' || e.key === 'K') { e.preventDefault(); moveRow(-1); }
    else if ((e.key === 'o' || (e.key === 'Enter' && !document.activeElement.classList.contains('click'))) && document.activeElement.classList.contains('kb-current')) {
      if (openRow()) e.preventDefault();
    }
  });
  window.addEventListener('hashchange', close);
  const button = document.querySelector('[data-testid="palette-open"]');
  if (button) button.addEventListener('click', () => (box ? close() : open()));
  MD.palette = { open, close };
})();
