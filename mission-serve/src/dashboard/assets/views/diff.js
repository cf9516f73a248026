// Thread diff, replay and flamegraph. Registers with app.js (window.MissionDashboard):
//  - the Diff page, #/diff?a=<thread>&b=<thread>: both threads' steps side by side, aligned
//    by GET /api/diff (see API.md), the first divergence highlighted; the URL restores it;
//  - on the Threads page, "Compare": pick two rows, then open their diff;
//  - on a thread's page, the Replay panel (step through what was recorded, in recorded order,
//    with the state known at each step) and the Flamegraph panel (nested time, slow steps
//    highlighted; a click selects the span).
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, api, num, fmtMs, fmtInt, fmtUsd, fmtCompact, shortId, kindClass, statusTag, markLoaded, KIND_LABEL } = MD.kit;
  // replaceChildren renders null as text: this leaves out what is absent.
  const put = (el, ...children) => el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));

  // ------------------------------------------------------------------------------------------
  // The Diff page.
  function stepCell(s, side) {
    if (!s) return h('td', { class: 'diff-gap', 'data-side': side }, '—');
    const bits = [];
    if (s.model) bits.push(s.model);
    if (s.input_tokens !== undefined || s.output_tokens !== undefined) bits.push(fmtInt(s.input_tokens) + '→' + fmtInt(s.output_tokens) + ' tok');
    if (s.args_hash) bits.push('args ' + s.args_hash.slice(0, 8));
    return h('td', { class: 'diff-step ' + kindClass(s.kind), 'data-side': side, 'data-span-id': s.span_id },
      h('div', { class: 'diff-name', style: { paddingLeft: Math.min(s.depth, 8) * 12 + 'px' } },
        h('span', { class: 'kind-dot' }), h('span', { class: 'nm' }, s.name),
        s.status === 'error' ? h('span', { class: 'err', title: s.error || 'error' }, '!') : null,
        h('span', { class: 'diff-dur' }, fmtMs(s.duration_ms))),
      bits.length ? h('div', { class: 'diff-meta mono' }, bits.join(' · ')) : null,
      s.error ? h('div', { class: 'diff-meta err-text' }, s.error) : null);
  }
  const show = (v) => (v === null || v === undefined ? '∅' : typeof v === 'number' ? String(+v.toFixed(3)) : String(v));

  function diffPage(match, params) {
    const a0 = params.get('a') || '';
    const b0 = params.get('b') || '';
    const inA = h('input', { type: 'search', value: a0, placeholder: 'Thread A (32 hex digits)', list: 'diff-threads', 'data-testid': 'diff-a', 'aria-label': 'Thread A', spellcheck: 'false' });
    const inB = h('input', { type: 'search', value: b0, placeholder: 'Thread B (32 hex digits)', list: 'diff-threads', 'data-testid': 'diff-b', 'aria-label': 'Thread B', spellcheck: 'false' });
    const datalist = h('datalist', { id: 'diff-threads' });
    const go = () => {
      const a = inA.value.trim().toLowerCase(), b = inB.value.trim().toLowerCase();
      location.hash = '#/diff?a=' + encodeURIComponent(a) + '&b=' + encodeURIComponent(b);
    };
    const swap = () => { location.hash = '#/diff?a=' + encodeURIComponent(inB.value.trim()) + '&b=' + encodeURIComponent(inA.value.trim()); };
    const onEnter = (e) => { if (e.key === 'Enter') go(); };
    inA.addEventListener('keydown', onEnter);
    inB.addEventListener('keydown', onEnter);
    const body = h('div', { 'data-testid': 'diff-body' });
    const el = h('div', { 'data-testid': 'page-diff' },
      h('div', { class: 'page-head' }, h('h1', null, 'Diff'), h('span', { class: 'sub' }, 'two threads step by step, and where they first diverge')),
      h('div', { class: 'filters' }, inA, inB, datalist,
        h('button', { class: 'btn', type: 'button', 'data-testid': 'diff-go', onclick: go }, 'Compare'),
        h('button', { class: 'btn', type: 'button', 'data-testid': 'diff-swap', onclick: swap, title: 'Swap A and B' }, '⇄')),
      body);
    // Recent threads to pick from.
    api('/api/threads', { limit: 200 }, [400, 404]).then((r) => {
      datalist.replaceChildren(...(r.threads || []).map((t) => h('option', { value: t.thread_id }, t.agent + ' · ' + t.status + ' · ' + fmtMs(t.duration_ms))));
    }).catch(() => {});

    async function load() {
      if (!a0 && !b0) {
        body.replaceChildren(h('div', { class: 'panel empty-state', 'data-testid': 'diff-empty' }, 'Pick two threads (on the Threads page: Compare, then two rows), or paste their ids above.'));
        markLoaded('diff');
        return;
      }
      body.replaceChildren(h('div', { class: 'loading' }, 'Comparing…'));
      let d;
      try {
        d = await api('/api/diff', { a: a0, b: b0 }, [400, 404]);
      } catch (e) {
        if (e.status === 401) return;
        body.replaceChildren(h('div', { class: 'panel empty-state', 'data-testid': 'diff-error', 'data-status': e.status }, 'Cannot compare: ' + e.message));
        markLoaded('diff');
        return;
      }
      render(d);
      markLoaded('diff');
    }

    function side(label, s) {
      return h('div', { class: 'kv-strip diff-side', 'data-testid': 'diff-side-' + label },
        h('div', null, h('span', null, label.toUpperCase()), h('b', null, h('a', { href: '#/threads/' + encodeURIComponent(s.thread_id), class: 'mono' }, shortId(s.thread_id)))),
        h('div', null, h('span', null, 'Agent'), h('b', null, s.agent || '–')),
        h('div', null, h('span', null, 'Steps'), h('b', null, fmtInt(s.steps))),
        h('div', null, h('span', null, 'Errors'), h('b', null, fmtInt(s.errors))),
        h('div', null, h('span', null, 'Duration'), h('b', null, fmtMs(s.duration_ms))),
        h('div', null, h('span', null, 'Tokens'), h('b', null, fmtCompact(s.tokens))),
        h('div', null, h('span', null, 'Cost'), h('b', null, fmtUsd(s.cost_usd))));
    }

    function render(d) {
      const first = d.first_divergence;
      const head = first
        ? h('div', { class: 'banner diff-first', 'data-testid': 'diff-first', 'data-step': first.step, 'data-field': first.field, 'data-name': first.name },
          h('b', null, 'First divergence at step ' + first.step + ' (' + first.name + '): '), first.field + ' ',
          h('code', null, show(first.a)), ' → ', h('code', null, show(first.b)),
          h('span', { class: 'hint' }, ' · ' + fmtInt(d.differing) + ' of ' + fmtInt(d.pairs.length) + ' aligned steps differ'),
          h('button', { class: 'btn', type: 'button', 'data-testid': 'diff-jump', style: { marginLeft: '8px' }, onclick: () => jump() }, 'Show'))
        : h('div', { class: 'banner info diff-same', 'data-testid': 'diff-identical' }, 'No divergence: ' + fmtInt(d.pairs.length) + ' aligned steps alike (tokens within 10 %, latency within 2×).');
      const rows = d.pairs.map((p) => {
        const firstHere = first && first.step === p.step;
        const fields = p.differences.map((x) => x.field);
        return h('tr', { class: 'diff-row' + (fields.length ? ' differs' : '') + (firstHere ? ' diverged-first' : ''), 'data-testid': 'diff-row',
          'data-step': p.step, 'data-differs': fields.join(',') || null, 'data-first': firstHere ? 'true' : null },
        h('td', { class: 'num mono' }, String(p.step)),
        stepCell(p.a, 'a'), stepCell(p.b, 'b'),
        h('td', { class: 'diff-fields' }, p.differences.map((x) => h('div', { class: 'diff-field', 'data-field': x.field },
          h('b', null, x.field), ' ', h('code', null, show(x.a)), ' → ', h('code', null, show(x.b))))));
      });
      const table = h('table', { class: 'data diff-table', 'data-testid': 'diff-table' },
        h('thead', null, h('tr', null, h('th', { class: 'num' }, 'Step'), h('th', null, 'A'), h('th', null, 'B'), h('th', null, 'Differences'))),
        h('tbody', null, rows));
      put(body,
        h('div', { class: 'grid cols-2' }, side('a', d.a), side('b', d.b)),
        head,
        d.truncated ? h('div', { class: 'banner info', 'data-testid': 'diff-truncated' }, 'Only the first steps of each thread are compared (truncated).') : null,
        h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, table)));
      if (first) requestAnimationFrame(() => jump(true));
    }
    function jump(initial) {
      const row = body.querySelector('tr[data-first="true"]');
      if (!row) return;
      if (initial && row.getBoundingClientRect().bottom <= innerHeight) return;
      row.scrollIntoView({ block: 'center' });
    }
    load();
    return { title: a0 && b0 ? 'Diff ' + shortId(a0) + ' ↔ ' + shortId(b0) : 'Diff', el };
  }
  MD.view({ name: 'diff', nav: 'diff', match: /^\/diff$/, page: diffPage });

  // ------------------------------------------------------------------------------------------
  // Threads page: Compare (pick two rows, open their diff).
  if (MD.threadsList) {
    MD.threadsList((el, tbody) => {
      let picking = false;
      const picked = [];
      const note = h('span', { class: 'count-note', 'data-testid': 'compare-note' });
      const open = h('button', { class: 'btn', type: 'button', 'data-testid': 'compare-open', disabled: true, onclick: () => {
        if (picked.length === 2) location.hash = '#/diff?a=' + picked[0] + '&b=' + picked[1];
      } }, 'Open diff');
      const toggle = h('button', { class: 'btn', type: 'button', 'data-testid': 'compare-toggle', title: 'Pick two threads to compare' }, 'Compare');
      const refresh = () => {
        toggle.classList.toggle('on', picking);
        open.disabled = picked.length !== 2;
        open.hidden = !picking;
        note.textContent = picking ? (picked.length < 2 ? 'pick ' + (picked.length ? 'thread B' : 'thread A') + ' (click a row)' : 'A ' + shortId(picked[0]) + ' · B ' + shortId(picked[1])) : '';
        tbody.querySelectorAll('tr').forEach((tr) => {
          const id = tr.thread && tr.thread.thread_id;
          const i = picked.indexOf(id);
          tr.classList.toggle('diff-picked', picking && i >= 0);
          if (picking && i >= 0) tr.dataset.picked = i ? 'b' : 'a'; else delete tr.dataset.picked;
        });
      };
      toggle.addEventListener('click', () => { picking = !picking; picked.length = 0; refresh(); });
      tbody.addEventListener('click', (e) => {
        if (!picking) return;
        const tr = e.target.closest('tr');
        const id = tr && tr.thread && tr.thread.thread_id;
        if (!id) return;
        e.preventDefault();
        e.stopPropagation();
        const i = picked.indexOf(id);
        if (i >= 0) picked.splice(i, 1);
        else { if (picked.length === 2) picked.shift(); picked.push(id); }
        refresh();
      }, true);
      open.hidden = true;
      const filters = el.querySelector('.filters');
      if (filters) filters.append(toggle, open, note);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Replay: every recorded event of the thread in recorded order (time, then a span's start
  // before what happens inside it, its end last), and what was known at each step.
  function replaySteps(data, ordered) {
    const rank = new Map(ordered.map(([s], i) => [s.span_id, i]));
    const steps = [];
    for (const s of data.spans || []) {
      const r = rank.has(s.span_id) ? rank.get(s.span_id) : 1e9;
      steps.push({ type: 'start', ts: num(s.start_ns), order: 0, r, span: s });
      steps.push({ type: 'end', ts: num(s.end_ns), order: 3, r: -r, span: s });
    }
    for (const l of data.logs || []) steps.push({ type: 'log', ts: num(l.ts_ns), order: 1, r: 0, log: l });
    for (const p of data.permissions || []) steps.push({ type: 'decision', ts: num(p.ts_ns), order: 1, r: 0, decision: p });
    steps.sort((x, y) => x.ts - y.ts || x.order - y.order || x.r - y.r);
    steps.forEach((s, i) => { s.index = i; });
    return steps;
  }
  // What a step is about: the span's name, the log's message or the decision's resource.
  function label(step) {
    return step.span ? step.span.name : step.log ? step.log.message : step.decision.resource;
  }
  function describe(step) {
    if (step.type === 'start') return 'start ' + step.span.name;
    if (step.type === 'end') return (step.span.status === 'error' ? 'failed ' : 'end ') + step.span.name + ' (' + fmtMs(step.span.duration_ms) + ')';
    if (step.type === 'log') return step.log.level + ': ' + step.log.message;
    return step.decision.decision + ' ' + step.decision.action + ' ' + step.decision.resource;
  }
  const replayAt = new Map(); // thread id → step index, kept across re-renders
  MD.threadPanel((data, ctx) => {
    const steps = replaySteps(data, ctx.spans || []);
    if (!steps.length) return null;
    const t0 = steps[0].ts;
    let at = Math.min(replayAt.has(ctx.id) ? replayAt.get(ctx.id) : 0, steps.length - 1);
    const slider = h('input', { type: 'range', min: 0, max: steps.length - 1, step: 1, value: at, 'data-testid': 'replay-slider', 'aria-label': 'Replay step', class: 'replay-slider' });
    const counter = h('span', { class: 'hint', 'data-testid': 'replay-counter' });
    const now = h('div', { class: 'replay-now', 'data-testid': 'replay-now' });
    const state = h('div', { class: 'replay-state', 'data-testid': 'replay-state' });
    const list = h('ol', { class: 'replay-list', 'data-testid': 'replay-steps' }, steps.map((s) =>
      h('li', { 'data-testid': 'replay-step', 'data-index': s.index, 'data-type': s.type, 'data-ts': s.ts, 'data-label': s.type + ':' + label(s),
        'data-span-id': s.span ? s.span.span_id : (s.log || s.decision).span_id || null, onclick: () => go(s.index) },
      h('span', { class: 'mono replay-t' }, '+' + fmtMs((s.ts - t0) / 1e6)), ' ', h('span', { class: 'replay-type ' + s.type }, s.type), ' ', describe(s))));
    const prev = h('button', { class: 'btn', type: 'button', 'data-testid': 'replay-prev', 'aria-label': 'Previous step', onclick: () => go(at - 1) }, '←');
    const next = h('button', { class: 'btn', type: 'button', 'data-testid': 'replay-next', 'aria-label': 'Next step', onclick: () => go(at + 1) }, '→');
    const first = h('button', { class: 'btn', type: 'button', 'data-testid': 'replay-first', onclick: () => go(0) }, 'First');
    const last = h('button', { class: 'btn', type: 'button', 'data-testid': 'replay-last', onclick: () => go(steps.length - 1) }, 'Last');
    slider.addEventListener('input', () => go(+slider.value));
    const panel = h('div', { class: 'panel replay', 'data-testid': 'replay-panel', tabindex: 0, style: { marginTop: '16px' } },
      h('div', { class: 'panel-head' }, h('h2', null, 'Replay'), h('span', { class: 'hint' }, 'step through what was recorded · ← / →')),
      h('div', { class: 'panel-body' },
        h('div', { class: 'replay-controls' }, first, prev, slider, next, last, counter),
        now, h('div', { class: 'replay-layout' }, state, list)));
    function go(i) {
      at = Math.max(0, Math.min(steps.length - 1, i));
      replayAt.set(ctx.id, at);
      slider.value = at;
      paint();
    }
    function paint() {
      const cur = steps[at];
      counter.textContent = 'step ' + (at + 1) + ' of ' + steps.length;
      const started = new Map(), ended = new Set();
      let logs = 0, decisions = 0, denials = 0, input = 0, output = 0, cost = 0, errors = 0;
      const lastLogs = [];
      for (const s of steps.slice(0, at + 1)) {
        if (s.type === 'start') started.set(s.span.span_id, s.span);
        else if (s.type === 'end') {
          ended.add(s.span.span_id);
          input += num(s.span.input_tokens); output += num(s.span.output_tokens); cost += num(s.span.cost_usd);
          if (s.span.status === 'error') errors++;
        } else if (s.type === 'log') { logs++; lastLogs.push(s.log); }
        else { decisions++; if (s.decision.decision === 'deny') denials++; }
      }
      const running = [...started.values()].filter((s) => !ended.has(s.span_id));
      Object.assign(state.dataset, { index: at, started: started.size, ended: ended.size, running: running.length, logs, decisions,
        tokens: input + output, cost: cost.toFixed(9), errors });
      now.dataset.type = cur.type;
      now.dataset.index = at;
      put(now, h('b', null, '+' + fmtMs((cur.ts - t0) / 1e6) + ' '), h('span', { class: 'replay-type ' + cur.type }, cur.type), ' ', describe(cur),
        cur.span ? h('button', { type: 'button', class: 'btn replay-select', 'data-testid': 'replay-select', onclick: () => ctx.select(cur.span.span_id) }, 'Show span') : null);
      const kv = (k, v, id) => h('div', { 'data-testid': id }, h('span', null, k), h('b', null, v));
      put(state,
        h('div', { class: 'kv-strip' },
          kv('Spans started', fmtInt(started.size), 'replay-started'), kv('Ended', fmtInt(ended.size), 'replay-ended'),
          kv('Errors', fmtInt(errors), 'replay-errors'), kv('Logs', fmtInt(logs), 'replay-logs'),
          kv('Decisions', fmtInt(decisions) + (denials ? ' (' + denials + ' denied)' : ''), 'replay-decisions'),
          kv('Tokens so far', fmtInt(input) + ' in · ' + fmtInt(output) + ' out', 'replay-tokens'), kv('Cost so far', fmtUsd(cost), 'replay-cost')),
        h('div', { class: 'replay-running' }, h('b', null, 'Running: '), running.length ? running.map((s) => h('span', { class: 'tag ' + kindClass(s.kind) }, s.name)) : 'nothing'),
        lastLogs.length ? h('div', { class: 'replay-logs mono' }, lastLogs.slice(-3).map((l) => h('div', null, l.level + ' ' + l.message))) : null);
      list.querySelectorAll('li').forEach((li, i) => { li.classList.toggle('past', i < at); li.classList.toggle('current', i === at); });
      const li = list.children[at];
      if (li && li.scrollIntoView && panel.isConnected) {
        const box = list.getBoundingClientRect(), r = li.getBoundingClientRect();
        if (r.top < box.top || r.bottom > box.bottom) list.scrollTop += r.top - box.top - box.height / 2;
      }
    }
    const onKey = (e) => {
      if (!panel.isConnected) { document.removeEventListener('keydown', onKey); return; }
      const tag = (e.target && e.target.tagName) || '';
      if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'ArrowRight') { e.preventDefault(); go(at + 1); }
      else if (e.key === 'ArrowLeft') { e.preventDefault(); go(at - 1); }
    };
    document.addEventListener('keydown', onKey);
    paint();
    return panel;
  });

  // ------------------------------------------------------------------------------------------
  // Flamegraph: one box per span, x = time, y = depth; a span at least twice its kind's
  // median and the slowest non-root span are "slow".
  MD.threadPanel((data, ctx) => {
    const ordered = ctx.spans || [];
    if (!ordered.length) return null;
    let t0 = Infinity, t1 = -Infinity, maxDepth = 0;
    for (const [s, d] of ordered) { t0 = Math.min(t0, num(s.start_ns)); t1 = Math.max(t1, num(s.end_ns)); maxDepth = Math.max(maxDepth, d); }
    const total = Math.max(1, t1 - t0);
    const byKind = new Map();
    for (const [s, d] of ordered) if (d > 0) { if (!byKind.has(s.kind)) byKind.set(s.kind, []); byKind.get(s.kind).push(num(s.duration_ms)); }
    const median = new Map([...byKind].map(([k, v]) => { v.sort((a, b) => a - b); return [k, v[Math.floor((v.length - 1) / 2)]]; }));
    let slowest = null;
    for (const [s, d] of ordered) if (d > 0 && (!slowest || num(s.duration_ms) > num(slowest.duration_ms))) slowest = s;
    const isSlow = (s, d) => d > 0 && (s === slowest || (byKind.get(s.kind).length > 1 && num(s.duration_ms) >= 2 * median.get(s.kind) && num(s.duration_ms) >= 1));
    const ROW = 22;
    const boxes = ordered.map(([s, d]) => {
      const left = ((num(s.start_ns) - t0) / total) * 100;
      const width = Math.max(0, ((num(s.end_ns) - num(s.start_ns)) / total) * 100);
      const slow = isSlow(s, d);
      return h('div', { class: 'flame-box ' + kindClass(s.kind) + (slow ? ' slow' : '') + (s.status === 'error' ? ' error' : ''),
        'data-testid': 'flame-box', 'data-span-id': s.span_id, 'data-depth': d, 'data-duration-ms': num(s.duration_ms), 'data-slow': slow ? 'true' : 'false',
        role: 'button', tabindex: 0, title: s.name + ' · ' + (KIND_LABEL[s.kind] || s.kind) + ' · ' + fmtMs(s.duration_ms) + (slow ? ' · slow' : ''),
        style: { left: Math.min(left, 99.5) + '%', width: 'max(3px, ' + width + '%)', top: d * ROW + 'px', height: ROW - 2 + 'px' },
        onclick: () => pick(s.span_id), onkeydown: (e) => { if (e.key === 'Enter') pick(s.span_id); } },
      h('span', { class: 'flame-label' }, (slow ? '▲ ' : '') + s.name + ' ' + fmtMs(s.duration_ms)));
    });
    const stage = h('div', { class: 'flame-stage', style: { height: (maxDepth + 1) * ROW + 'px' } }, boxes);
    const panel = h('div', { class: 'panel flamegraph', 'data-testid': 'flamegraph', style: { marginTop: '16px' } },
      h('div', { class: 'panel-head' }, h('h2', null, 'Flamegraph'),
        h('span', { class: 'hint' }, fmtInt(ordered.length) + ' spans · ' + fmtMs(total / 1e6) + ' · slow steps outlined')),
      h('div', { class: 'panel-body' }, stage));
    function pick(id) {
      ctx.select(id);
      boxes.forEach((b) => b.classList.toggle('selected', b.dataset.spanId === id));
    }
    return panel;
  });
})();
