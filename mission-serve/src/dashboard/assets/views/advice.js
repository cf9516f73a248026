// The Advice page (#/advice?minutes=&slo_ms=): recommendations computed from the store
// (/api/recommendations), and each operation's p95 with its forecast band, the SLO and the
// changepoints (anomalies of the operation, with their attributed cause) marked on the chart.
//
// Where the SLO comes from, in order (the page says which): the URL's `slo_ms`; a latency
// directive (`pNN(duration) > X` in /api/control, inside an agent; it applies to every operation
// it watches, which the listing does not say, so the page names the directive); else the default
// DEFAULT_SLO_MS below. "Crosses the SLO in ~N min" is the first forecast step whose mean is
// above the SLO.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, svgEl, api, num, orNull, fmtUsd, fmtDateTime, nsToMs, kindClass, makeChart, drawChart, legend, markLoaded, KIND_LABEL, hashParams, setHashParams, windowSelect } = MD.kit;

  const DEFAULT_SLO_MS = 2000;
  const SHOWN_OPERATIONS = 12;
  const KIND_TITLE = {
    model_right_sizing: 'Model right-sizing', prompt_cache: 'Prompt cache', slow_tool: 'Slow tool',
    failing_tool: 'Failing tool', budget_burn: 'Budget burn',
  };
  const fmtMs = (ms) => (ms >= 1000 ? +(ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + 's' : +ms.toFixed(ms < 10 ? 1 : 0) + 'ms');

  // The SLO of the page: {ms, source}.
  function sloFrom(params, control) {
    const fromUrl = Number(params.get('slo_ms'));
    if (params.get('slo_ms') && isFinite(fromUrl) && fromUrl > 0) return { ms: fromUrl, source: 'from the URL (slo_ms)' };
    for (const d of (control && control.directives) || []) {
      const m = /\bp(\d\d)\(duration\)\s*>=?\s*([\d.]+)\s*(ms|s)\b/.exec(String(d.condition || ''));
      if (m && !/^forecast/.test(String(d.condition))) {
        const ms = Number(m[2]) * (m[3] === 's' ? 1000 : 1);
        if (ms > 0) return { ms, source: `from directive ${d.name} (${d.condition})` };
      }
    }
    return { ms: DEFAULT_SLO_MS, source: `default ${fmtMs(DEFAULT_SLO_MS)}: no latency directive; set ?slo_ms= to change` };
  }

  // When the forecast's mean first goes above the SLO: {state: 'above'|'crosses'|'below', minutes}.
  function crossing(op, slo, nowMs) {
    const last = (op.series || []).filter((p) => orNull(p.p95_ms) !== null).pop();
    if (last && last.p95_ms > slo) return { state: 'above' };
    const hit = (op.forecast || []).find((f) => num(f.mean_ms) > slo);
    if (!hit) return { state: 'below' };
    return { state: 'crosses', minutes: Math.max(1, Math.round((hit.t_ms - nowMs) / 60000)) };
  }

  // Marks each anomaly of the operation (a changepoint) on its drawn chart: a line and a dot
  // whose tooltip names the cause.
  function markChangepoints(chart, marks) {
    const sc = chart.scale;
    if (!sc) return;
    for (const a of marks) {
      const t = nsToMs(a.ts_ns);
      if (t < sc.tMin || t > sc.tMax) continue;
      const x = sc.x(t).toFixed(1);
      const g = svgEl('g');
      g.setAttribute('class', 'changepoint');
      g.setAttribute('data-testid', 'changepoint');
      g.setAttribute('data-cause', a.cause || '');
      const line = svgEl('line');
      line.setAttribute('x1', x); line.setAttribute('x2', x); line.setAttribute('y1', sc.T); line.setAttribute('y2', sc.H - sc.B);
      const dot = svgEl('circle');
      dot.setAttribute('cx', x); dot.setAttribute('cy', sc.T + 4); dot.setAttribute('r', 4);
      const title = svgEl('title');
      title.textContent = `changepoint ${fmtDateTime(t)}: ${a.summary}` + (a.cause ? ` (cause: ${a.cause})` : '');
      g.append(line, dot, title);
      chart.svg.appendChild(g);
    }
  }
  const crossingText = (c) => (c.state === 'above' ? 'above the SLO now' : c.state === 'crosses' ? `crosses the SLO in ~${c.minutes} min` : 'forecast stays under the SLO');

  // The overview's operation charts get the same marks: the operation's changepoints and, when
  // an SLO is set (the URL's `slo_ms` or a latency directive, not the default), where its
  // forecast crosses it. The anomalies and directives are read at most every 30 s.
  let known = { at: 0, minutes: 0, anomalies: [], control: null };
  let loading = null;
  function overviewFacts(minutes) {
    if (known.minutes === minutes && Date.now() - known.at < 30000) return Promise.resolve(known);
    if (!loading) {
      loading = Promise.all([
        api('/api/anomalies', { minutes, limit: 2000 }, [400, 404]).catch(() => null),
        api('/api/control', {}, [400, 404]).catch(() => null),
      ]).then(([anomalies, control]) => {
        known = { at: Date.now(), minutes, anomalies: (anomalies && anomalies.anomalies) || [], control };
        loading = null;
        return known;
      });
    }
    return loading;
  }
  MD.opCard((card, overview) => {
    const params = hashParams();
    overviewFacts(num(overview && overview.minutes) || 15).then((facts) => {
      if (!card.el.isConnected) return;
      card.chart.svg.querySelectorAll('.changepoint').forEach((n) => n.remove());
      markChangepoints(card.chart, facts.anomalies.filter((a) => a.operation === card.op.name));
      const slo = sloFrom(params, facts.control);
      let badge = card.el.querySelector('[data-testid="op-slo"]');
      if (slo.source.startsWith('default')) { if (badge) badge.remove(); return; }
      const c = crossing(card.op, slo.ms, num(overview.now_ms) || Date.now());
      if (!badge) {
        const head = card.el.querySelector('.panel-head');
        badge = h('a', { 'data-testid': 'op-slo', href: '#/advice' });
        head.insertBefore(badge, head.querySelector('.right'));
      }
      badge.className = 'slo-crossing slo-' + c.state;
      badge.dataset.state = c.state;
      badge.dataset.minutes = c.minutes || '';
      badge.textContent = crossingText(c);
      badge.title = `SLO ${fmtMs(slo.ms)} ${slo.source}`;
    });
  });

  function page(_match, params) {
    let minutes = Math.min(43200, Math.max(1, Number(params.get('minutes')) || 1440));
    const chartMinutes = Math.min(minutes, 360);
    const recBody = h('div', { class: 'table-wrap', 'data-testid': 'recommendations' });
    const opsGrid = h('div', { class: 'grid cols-2', 'data-testid': 'advice-operations' });
    const sloNote = h('span', { class: 'hint', 'data-testid': 'slo-source' });
    const sub = h('span', { class: 'sub' });
    const winSel = windowSelect('advice-window', [[60, 'Last hour'], [360, 'Last 6 h'], [1440, 'Last 24 h'], [10080, 'Last 7 days']], minutes, (v) => {
      minutes = +v;
      setHashParams('/advice', { ...Object.fromEntries(params), minutes });
      load();
    });
    const el = h('div', { 'data-testid': 'page-advice' },
      h('div', { class: 'page-head' }, h('h1', null, 'Advice'), sub, h('span', { class: 'spacer' }), h('div', { class: 'filters', style: { margin: 0 } }, winSel)),
      h('div', { class: 'section-title' }, 'Recommendations'),
      h('div', { class: 'panel' }, recBody),
      h('div', { class: 'section-title' }, 'Forecasts and changepoints'),
      h('div', { class: 'advice-slo' }, sloNote),
      opsGrid);
    const charts = [];

    function renderRecs(data) {
      const recs = data.recommendations || [];
      const saving = recs.reduce((s, r) => s + num(r.saving_usd), 0);
      sub.textContent = `${recs.length} recommendation${recs.length === 1 ? '' : 's'}` + (saving ? ` · ${fmtUsd(saving)} to save` : '') + (data.truncated ? ' · truncated' : '');
      if (!recs.length) {
        recBody.replaceChildren(h('div', { class: 'empty-state' }, data.store === false ? 'No store: recommendations are computed from the store.' : 'Nothing to recommend in this window.'));
        return;
      }
      recBody.replaceChildren(h('table', { class: 'data advice-table' },
        h('thead', null, h('tr', null, h('th', null, 'Kind'), h('th', null, 'Subject'), h('th', { class: 'num' }, 'Saving'), h('th', null, 'Impact'), h('th', null, 'Advice'))),
        h('tbody', null, recs.map((r) => h('tr', { 'data-testid': 'recommendation', 'data-kind': r.kind, 'data-subject': r.subject, 'data-saving': r.saving_usd === null ? '' : String(r.saving_usd) },
          h('td', null, h('span', { class: 'advice-kind advice-' + r.kind }, KIND_TITLE[r.kind] || r.kind)),
          h('td', { class: 'mono' }, r.subject),
          h('td', { class: 'num' }, r.saving_usd === null ? '–' : fmtUsd(r.saving_usd)),
          h('td', null, r.impact),
          h('td', { class: 'advice-message', title: JSON.stringify(r.evidence) }, r.message))))));
    }

    function renderOps(overview, anomalies, slo) {
      sloNote.textContent = `SLO ${fmtMs(slo.ms)} ${slo.source}`;
      // Operations with a changepoint first, then the busiest.
      const marked = (o) => anomalies.some((a) => a.operation === o.name);
      const ops = (overview.operations || []).slice().sort((a, b) => marked(b) - marked(a) || num(b.count) - num(a.count)).slice(0, SHOWN_OPERATIONS);
      charts.length = 0;
      if (!ops.length) {
        opsGrid.replaceChildren(h('div', { class: 'panel empty-state' }, 'No spans recorded in this window yet.'));
        return;
      }
      const cards = ops.map((o) => {
        const key = o.kind + '/' + o.name;
        const chart = makeChart('advice-chart', 'small');
        chart.svg.setAttribute('data-op', key);
        const marks = anomalies.filter((a) => a.operation === o.name);
        const c = crossing(o, slo.ms, num(overview.now_ms) || Date.now());
        const text = crossingText(c);
        const card = h('div', { class: 'panel op-card ' + kindClass(o.kind), 'data-testid': 'advice-op', 'data-op': key },
          h('div', { class: 'panel-head' }, h('span', { class: 'kind-dot' }), h('span', { class: 'name', title: key }, o.name),
            h('span', { class: 'hint' }, KIND_LABEL[o.kind] || o.kind),
            h('div', { class: 'right' }, h('span', { class: 'slo-crossing slo-' + c.state, 'data-testid': 'slo-crossing', 'data-state': c.state, 'data-minutes': c.minutes || '' }, text))),
          h('div', { class: 'panel-body' },
            legend([['p95', '--c1'], ['SLO', '--c5']].concat((o.forecast || []).length ? [['forecast', null, true]] : [])),
            chart,
            marks.length ? h('div', { class: 'hint', 'data-testid': 'changepoint-list' }, marks.slice(0, 3).map((a) => h('div', null, `${fmtDateTime(nsToMs(a.ts_ns))}: ${a.summary}`))) : null));
        charts.push({ chart, op: o, marks, slo: slo.ms });
        return card;
      });
      opsGrid.replaceChildren(...cards);
      drawAll();
    }

    function drawAll() {
      for (const { chart, op, marks, slo } of charts) {
        const s = op.series || [];
        const f = op.forecast || [];
        const ts = s.map((p) => p.t_ms).concat(f.map((p) => p.t_ms));
        const t0 = Math.min(...ts), t1 = Math.max(...ts);
        drawChart(chart, {
          label: 'p95 latency of ' + op.name + ' with its forecast and SLO',
          yFmt: fmtMs,
          series: [
            { label: 'p95', color: '--c1', points: s.map((p) => [p.t_ms, orNull(p.p95_ms)]) },
            { label: 'SLO', color: '--c5', points: isFinite(t0) ? [[t0, slo], [t1, slo]] : [] },
          ],
          band: f.map((p) => [p.t_ms, num(p.lo_ms), num(p.hi_ms), p.mean_ms]),
        });
        const sloLine = chart.svg.querySelector('path.line[style*="--c5"]');
        if (sloLine) { sloLine.setAttribute('data-testid', 'slo-line'); sloLine.setAttribute('stroke-dasharray', '5 4'); }
        markChangepoints(chart, marks);
      }
    }

    async function load() {
      const [recs, overview, anomalies, control] = await Promise.all([
        api('/api/recommendations', { minutes }),
        api('/api/overview', { minutes: chartMinutes }),
        api('/api/anomalies', { minutes: chartMinutes, limit: 2000 }),
        api('/api/control', {}, [404]).catch(() => null),
      ]);
      renderRecs(recs);
      renderOps(overview, (anomalies && anomalies.anomalies) || [], sloFrom(params, control));
      markLoaded('advice');
    }
    load().catch((e) => { recBody.replaceChildren(h('div', { class: 'empty-state' }, 'Could not load: ' + e.message)); });

    return { el, title: 'Advice', resize: drawAll };
  }

  MD.view({ name: 'advice', nav: 'advice', match: /^\/advice\/?$/, page });
})();
