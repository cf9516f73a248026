// Exports (#/exports): download threads as JSON Lines (with their spans, logs and scores) or CSV
// (one row per thread), the metrics Prometheus scrapes (/metrics, OpenMetrics text), and the
// report on a period as a print-ready page (/api/report.html, opened in a new tab).
// Registers with app.js (window.MissionDashboard); the routes are in API.md. Downloads are
// fetched with the page's token (never put in a URL) and saved from a blob.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, showBanner, markLoaded } = MD.kit;

  function token() {
    try { return sessionStorage.getItem('mission.token'); } catch (_) { return null; }
  }

  // Fetches `path` with the filters and saves the answer as `file`; resolves to whether a
  // bound cut it short (the server's X-Mission-Truncated) and its size.
  async function download(path, params, file) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null) url.searchParams.set(k, v);
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const res = await fetch(url, { headers, cache: 'no-store' });
    if (!res.ok) {
      let message = res.status + ' ' + res.statusText;
      try { const body = await res.json(); message = body.message || message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    const blob = await res.blob();
    const a = h('a', { href: URL.createObjectURL(blob), download: file, hidden: true });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    return { truncated: res.headers.get('x-mission-truncated') === 'true', bytes: blob.size };
  }

  // Fetches the report (/api/report.html, a print-ready page) with the token and shows it in
  // the tab opened on the click (so no popup blocker stops it), from a blob; without that tab,
  // saves it as report.html. Resolves to its size.
  async function openReport(minutes, tab) {
    const url = new URL('/api/report.html', location.origin);
    url.searchParams.set('minutes', minutes || '1440');
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    let res;
    try {
      res = await fetch(url, { headers, cache: 'no-store' });
    } catch (e) {
      if (tab) tab.close();
      throw e;
    }
    if (!res.ok) {
      if (tab) tab.close();
      let message = res.status + ' ' + res.statusText;
      try { const body = await res.json(); message = body.message || message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    const blob = new Blob([await res.arrayBuffer()], { type: 'text/html' });
    const href = URL.createObjectURL(blob);
    if (tab) {
      tab.location.href = href;
    } else {
      const a = h('a', { href, download: 'report.html', hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    }
    setTimeout(() => URL.revokeObjectURL(href), 60000);
    return { bytes: blob.size, opened: !!tab };
  }

  function exportsPage(_match, params) {
    const minutes = h('input', { type: 'number', min: 1, max: 43200, placeholder: 'All time', value: params.get('minutes') || '', 'data-testid': 'export-minutes', 'aria-label': 'Window in minutes' });
    const agent = h('input', { type: 'text', placeholder: 'Any agent', value: params.get('agent') || '', 'data-testid': 'export-agent', 'aria-label': 'Agent' });
    const status = h('select', { 'data-testid': 'export-status', 'aria-label': 'Status' },
      h('option', { value: '' }, 'Any status'), h('option', { value: 'ok' }, 'OK'), h('option', { value: 'error' }, 'Error'));
    status.value = params.get('status') || '';
    const limit = h('input', { type: 'number', min: 1, max: 1000, value: params.get('limit') || 1000, 'data-testid': 'export-limit', 'aria-label': 'Most threads' });
    const note = h('p', { class: 'exports-note', 'data-testid': 'export-note', role: 'status' });
    const filters = () => ({ minutes: minutes.value.trim(), agent: agent.value.trim(), status: status.value, limit: limit.value.trim() });
    const button = (label, path, file, testid, withFilters) => h('button', { class: 'btn', type: 'button', 'data-testid': testid, onclick: async () => {
      note.textContent = 'Preparing ' + file + '…';
      try {
        const r = await download(path, withFilters ? filters() : {}, file);
        note.textContent = file + ': ' + r.bytes + ' bytes' + (r.truncated ? ' (truncated: a bound cut it short; narrow the filters)' : '') + '.';
        note.dataset.truncated = String(r.truncated);
      } catch (e) {
        note.textContent = '';
        showBanner('Export failed: ' + e.message, 'export');
      }
    } }, label);
    const el = h('section', { class: 'page exports-page', 'data-testid': 'exports-page' },
      h('h1', null, 'Exports'),
      h('p', { class: 'muted' }, 'Threads as JSON Lines (one thread per line with its spans, logs and scores: a dataset for evaluation tools) or CSV (one row per thread), newest first, within your token\u2019s tenant.'),
      h('div', { class: 'filters exports-filters' },
        h('label', null, 'Minutes ', minutes), h('label', null, 'Agent ', agent), h('label', null, 'Status ', status), h('label', null, 'Threads ', limit)),
      h('div', { class: 'exports-actions' },
        button('Threads (JSON Lines)', '/api/export/threads.jsonl', 'threads.jsonl', 'export-jsonl', true),
        button('Threads (CSV)', '/api/export/threads.csv', 'threads.csv', 'export-csv', true),
        button('Metrics (OpenMetrics)', '/metrics', 'metrics.txt', 'export-metrics', false),
        h('button', { class: 'btn', type: 'button', 'data-testid': 'export-report', title: 'The report on the period (a day when Minutes is empty), as a page to print or save as PDF', onclick: async () => {
          const tab = window.open('', '_blank');
          note.textContent = 'Preparing the report…';
          try {
            const r = await openReport(minutes.value.trim(), tab);
            note.textContent = 'Report: ' + r.bytes + ' bytes' + (r.opened ? ', opened in a new tab: print it from there (or save it as PDF).' : ', saved as report.html.');
            note.dataset.truncated = 'false';
          } catch (e) {
            note.textContent = '';
            showBanner('Report failed: ' + e.message, 'export');
          }
        } }, 'Print report')),
      note,
      h('p', { class: 'muted' }, 'Prometheus scrapes /metrics with the same bearer token (authorization.credentials in its scrape config).'));
    setTimeout(() => markLoaded('exports'), 0);
    return { el, title: 'Exports' };
  }

  MD.view({ name: 'exports', match: /^\/exports$/, page: exportsPage });
})();
