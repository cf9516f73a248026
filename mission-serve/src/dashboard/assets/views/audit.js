// The Audit page (#/audit?type=&actor=&severity=&from=&to=): the store's audit trail through
// /api/audit, filters kept in the URL (a shared link restores them), suspicious entries
// (denials, escalations, erasures, policy changes) highlighted, the hash chain's verification
// status, and the shown entries exported as JSON Lines or CSV.
'use strict';
(function () {
  const MD = window.MissionDashboard;
  if (!MD) return;
  const { h, api, fmtDateTime, nsToMs, markLoaded, setHashParams } = MD.kit;

  const KINDS = ['permission_denied', 'permission_granted', 'policy_change', 'directive_change', 'admin_action',
    'erasure', 'budget_exceeded', 'thread_control', 'approval', 'directive_run', 'compliance'];
  const FILTERS = ['type', 'actor', 'severity', 'from', 'to'];

  // A CSV field: quoted when it must be, and text a spreadsheet would run as a formula (= + - @
  // tab, carriage return) led by a quote, as the server's CSV export does.
  function csvCell(v) {
    let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function exportText(entries, format) {
    if (format === 'jsonl') return entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : '');
    const cols = ['seq', 'n', 'time_ns', 'kind', 'actor', 'tenant', 'severity', 'suspicious', 'verified', 'broken', 'hash', 'detail'];
    return [cols.join(',')].concat(entries.map((e) => cols.map((c) => csvCell(e[c])).join(','))).join('\n') + '\n';
  }
  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h('a', { href: url, download: name, style: { display: 'none' } });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function page(_match, params) {
    const values = {};
    for (const f of FILTERS) values[f] = params.get(f) || '';
    let entries = [];
    const typeSel = h('select', { 'aria-label': 'Type', 'data-testid': 'audit-type' },
      h('option', { value: '' }, 'Any type'), KINDS.map((k) => h('option', { value: k }, k.replace(/_/g, ' '))));
    const actorIn = h('input', { type: 'search', placeholder: 'Actor', 'aria-label': 'Actor', 'data-testid': 'audit-actor' });
    const sevSel = h('select', { 'aria-label': 'Severity', 'data-testid': 'audit-severity' },
      [['', 'Any severity'], ['warning', 'Warning and up'], ['critical', 'Critical']].map(([v, l]) => h('option', { value: v }, l)));
    const fromIn = h('input', { type: 'date', 'aria-label': 'From', 'data-testid': 'audit-from' });
    const toIn = h('input', { type: 'date', 'aria-label': 'To', 'data-testid': 'audit-to' });
    const inputs = { type: typeSel, actor: actorIn, severity: sevSel, from: fromIn, to: toIn };
    for (const f of FILTERS) {
      // A value the select does not offer (a kind of the host's own) is added, so the URL wins.
      if (inputs[f].tagName === 'SELECT' && values[f] && ![...inputs[f].options].some((o) => o.value === values[f])) {
        inputs[f].appendChild(h('option', { value: values[f] }, values[f]));
      }
      inputs[f].value = values[f];
      inputs[f].addEventListener(f === 'actor' ? 'input' : 'change', MD.kit.debounce(apply, f === 'actor' ? 250 : 0));
    }
    const chain = h('div', { class: 'audit-chain', 'data-testid': 'audit-chain', 'data-ok': '' }, 'Verifying the chain…');
    const sub = h('span', { class: 'sub' });
    const body = h('div', { class: 'table-wrap' });
    const exportBtn = (format, label) => h('button', { type: 'button', class: 'btn', 'data-testid': 'audit-export-' + format, onclick: () => {
      const text = exportText(entries, format);
      download(format === 'jsonl' ? 'audit.jsonl' : 'audit.csv', text, format === 'jsonl' ? 'application/x-ndjson' : 'text/csv');
    } }, label);
    const el = h('div', { 'data-testid': 'page-audit' },
      h('div', { class: 'page-head' }, h('h1', null, 'Audit trail'), sub, h('span', { class: 'spacer' }), exportBtn('jsonl', 'Export JSON Lines'), exportBtn('csv', 'Export CSV')),
      chain,
      h('div', { class: 'filters' }, typeSel, actorIn, sevSel, h('label', null, 'from ', fromIn), h('label', null, 'to ', toIn)),
      h('div', { class: 'panel' }, body));

    function apply() {
      for (const f of FILTERS) values[f] = inputs[f].value.trim();
      setHashParams('/audit', values);
      load();
    }

    function renderChain(c, available) {
      if (!available) {
        chain.dataset.ok = '';
        chain.className = 'audit-chain';
        chain.textContent = 'This store has no audit trail.';
        return;
      }
      chain.dataset.ok = String(!!c.ok);
      chain.dataset.brokenAt = c.broken_at === null || c.broken_at === undefined ? '' : String(c.broken_at);
      chain.className = 'audit-chain ' + (c.ok ? 'ok' : 'broken');
      chain.textContent = c.ok
        ? (c.records === null ? 'Chain verified: every hash and link checks out.' : `Chain verified: ${c.records} record${c.records === 1 ? '' : 's'}, every hash and link checks out.`)
        : `Chain broken${c.broken_at ? ' at entry ' + c.broken_at : ''}: ${c.problem}. ${c.message || ''}`;
    }

    function render(data) {
      entries = data.entries || [];
      sub.textContent = `${entries.length} of ${data.total} entr${data.total === 1 ? 'y' : 'ies'}` + (data.truncated ? ' (newest shown)' : '');
      renderChain(data.chain || {}, data.available);
      if (!entries.length) {
        body.replaceChildren(h('div', { class: 'empty-state' }, data.available ? 'No audit entries match.' : 'No audit trail in this store.'));
        return;
      }
      body.replaceChildren(h('table', { class: 'data audit-table' },
        h('thead', null, h('tr', null, h('th', { class: 'num' }, '#'), h('th', null, 'Time'), h('th', null, 'Type'), h('th', null, 'Actor'),
          h('th', null, 'Tenant'), h('th', null, 'Severity'), h('th', null, 'Detail'))),
        h('tbody', null, entries.map((e) => h('tr', {
          'data-testid': 'audit-row', 'data-kind': e.kind, 'data-suspicious': e.suspicious || '', 'data-broken': String(!!e.broken),
          class: [e.suspicious ? 'suspicious' : '', e.broken ? 'broken' : '', e.verified ? '' : 'unverified'].join(' ').trim() || null,
        },
        h('td', { class: 'num' }, e.seq !== undefined ? e.seq : e.n),
        h('td', null, fmtDateTime(nsToMs(e.time_ns))),
        h('td', null, e.kind, e.suspicious ? h('span', { class: 'tag audit-flag' }, e.suspicious) : null, e.broken ? h('span', { class: 'tag audit-broken' }, 'chain breaks here') : null),
        h('td', { class: 'mono' }, e.actor),
        h('td', null, e.tenant),
        h('td', null, h('span', { class: 'sev sev-' + e.severity }, e.severity)),
        h('td', { class: 'mono audit-detail' }, JSON.stringify(e.detail)))))));
    }

    async function load() {
      const q = { limit: 1000 };
      for (const f of FILTERS) if (values[f]) q[f] = values[f];
      try {
        render(await api('/api/audit', q));
      } catch (e) {
        body.replaceChildren(h('div', { class: 'empty-state' }, 'Could not load the audit trail: ' + e.message));
      }
      markLoaded('audit');
    }
    load();
    return { el, title: 'Audit trail' };
  }

  MD.view({ name: 'audit', nav: 'audit', match: /^\/audit\/?$/, page });
})();
