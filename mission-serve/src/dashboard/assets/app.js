// Mission Control dashboard: a single-page app over the JSON API and the live SSE stream (see
// API.md beside this file). Vanilla JS, no build step, no third-party code: the charts are small
// SVG drawings made here. Pages are hash routes: #/, #/threads, #/threads/<id>, #/anomalies,
// #/logs, #/control, and those the view files register (assets/views/*.js, loaded after this
// file): each calls `MissionDashboard.view({...})` or `MissionDashboard.threadPanel(fn)` with the
// helpers in `MissionDashboard.kit`.
'use strict';

// Apply the saved theme before the first paint (this script loads in <head>, without defer).
(function applySavedTheme() {
  try {
    const saved = localStorage.getItem('mission.theme');
    if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  } catch (_) { /* storage may be disabled */ }
})();

(function () {
  // ------------------------------------------------------------------------------------------
  // Test and measurement hooks. `latencies` holds, for each span event rendered from the stream,
  // the milliseconds between the span's end (the agent's clock) and the frame that showed it.
  const MAX_LATENCIES = 5000;
  const M = (window.__mission = {
    latencies: [],
    spansRendered: 0,
    eventsReceived: 0,
    page: null,
    loaded: null,
    loadedAt: null,
  });

  const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
  const levelRank = (l) => {
    const i = LEVELS.indexOf(String(l || '').toLowerCase().replace('warning', 'warn'));
    return i < 0 ? 2 : i;
  };
  const PALETTE = ['--c1', '--c2', '--c3', '--c4', '--c5', '--c6'];
  const KIND_LABEL = {
    agent_step: 'agent step', agent_run: 'agent run', llm_call: 'LLM call', tool_call: 'tool call',
    retrieval: 'retrieval', custom: 'custom',
  };

  // ------------------------------------------------------------------------------------------
  // Small DOM and formatting helpers.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, children);
    return el;
  }
  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  const svgEl = (tag) => document.createElementNS('http://www.w3.org/2000/svg', tag);
  const escXml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  const orNull = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

  function fmtInt(n) {
    return Math.round(num(n)).toLocaleString('en-US');
  }
  function fmtCompact(n) {
    n = num(n);
    const a = Math.abs(n);
    const short = (v, d) => v.toFixed(d).replace(/\.0$/, '');
    if (a >= 1e9) return short(n / 1e9, a >= 1e10 ? 0 : 1) + 'B';
    if (a >= 1e6) return short(n / 1e6, a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return short(n / 1e3, a >= 1e5 ? 0 : 1) + 'k';
    if (a >= 100 || Number.isInteger(n)) return fmtInt(n);
    return n.toFixed(a >= 10 ? 1 : 2);
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return '–';
    const a = Math.abs(ms);
    if (a < 1) return ms.toFixed(2) + ' ms';
    if (a < 10) return ms.toFixed(1) + ' ms';
    if (a < 1000) return Math.round(ms) + ' ms';
    if (a < 60000) return (ms / 1000).toFixed(a < 10000 ? 2 : 1) + ' s';
    const m = Math.floor(ms / 60000);
    return m + ' m ' + Math.round((ms % 60000) / 1000) + ' s';
  }
  function fmtUsd(v) {
    v = num(v);
    if (v === 0) return '$0';
    const a = Math.abs(v);
    if (a < 0.01) return '$' + v.toFixed(4);
    if (a < 1000) return '$' + v.toFixed(2);
    return '$' + fmtCompact(v);
  }
  function fmtPct(r) {
    r = num(r) * 100;
    return (r === 0 ? '0' : r < 1 ? r.toFixed(2) : r < 10 ? r.toFixed(1) : Math.round(r)) + '%';
  }
  function fmtBytes(b) {
    b = num(b);
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(b < 10 ? 1 : 0) : b) + ' ' + units[i];
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtClock(ms, withMs) {
    if (!ms) return '–';
    const d = new Date(ms);
    const s = pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
    return withMs ? s + '.' + String(d.getMilliseconds()).padStart(3, '0') : s;
  }
  function fmtDateTime(ms) {
    if (!ms) return '–';
    const d = new Date(ms);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    const day = sameDay ? '' : d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' }) + ' ';
    return day + fmtClock(ms);
  }
  function fmtAgo(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 2) return 'just now';
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  const nsToMs = (ns) => num(ns) / 1e6;
  const shortId = (id) => (String(id).length > 14 ? String(id).slice(0, 6) + '…' + String(id).slice(-6) : String(id));
  const debounce = (fn, ms) => {
    let t = null;
    return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  };
  const kindClass = (k) => 'k-' + String(k || 'custom').replace(/[^a-z0-9_]/gi, '');
  const tag = (text, cls, testid) => h('span', { class: 'tag ' + (cls || ''), 'data-testid': testid }, text);
  // A span whose status was never set ended without an error: shown as ok, said so on hover.
  const statusTag = (s) => {
    const t = tag(s === 'error' ? 'error' : 'ok', s === 'error' ? 'error' : 'ok');
    t.dataset.status = s || 'unset';
    if (s !== 'error' && s !== 'ok') t.title = 'status not set; no error recorded';
    return t;
  };

  // ------------------------------------------------------------------------------------------
  // Token handling: `?token=` in the page URL, else sessionStorage; asked for on any 401.
  let token = null;
  try { token = sessionStorage.getItem('mission.token'); } catch (_) { /* no storage */ }
  (function takeTokenFromUrl() {
    const params = new URLSearchParams(location.search);
    const t = params.get('token');
    if (t) {
      token = t;
      try { sessionStorage.setItem('mission.token', t); } catch (_) { /* no storage */ }
      params.delete('token');
      const q = params.toString();
      history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
    }
  })();
  function setToken(t) {
    token = t || null;
    try {
      if (token) sessionStorage.setItem('mission.token', token);
      else sessionStorage.removeItem('mission.token');
    } catch (_) { /* no storage */ }
  }

  class ApiError extends Error {
    constructor(status, kind, message) {
      super(message || kind || 'HTTP ' + status);
      this.status = status;
      this.kind = kind;
    }
  }
  let authNeeded = false;
  // `quiet` lists statuses the caller shows itself (no banner).
  // A write (an operator's action): JSON body, token in the header; the answer's JSON, or an
  // ApiError carrying the server's message.
  async function apiPost(path, body) {
    const headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(new URL(path, location.origin), { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' });
    let answer = null;
    try { answer = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new ApiError(res.status, answer && answer.error, answer && answer.message);
    return answer;
  }

  async function api(path, params, quiet) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== '' && v !== null && v !== undefined) url.searchParams.set(k, v);
    }
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(url, { headers, cache: 'no-store' });
    } catch (e) {
      showBanner('Cannot reach the dashboard server (' + e.message + ').', 'api');
      throw new ApiError(0, 'network', e.message);
    }
    if (res.status === 401) {
      needToken(token ? 'The token was refused.' : null);
      throw new ApiError(401, 'unauthorized', 'unauthorized');
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = new ApiError(res.status, body && body.error, body && body.message);
      if (!(quiet || [404]).includes(res.status)) showBanner('API error on ' + url.pathname + ': ' + err.message, 'api');
      throw err;
    }
    clearBanner('api');
    // Answers read from the store list the files they had to skip: the numbers are then
    // incomplete, and the page says so until an answer reads every file again.
    if (body && Array.isArray(body.unreadable)) {
      if (body.unreadable.length) {
        showBanner('Incomplete data: ' + body.unreadable.length + ' unreadable file(s) of the store were skipped: ' + body.unreadable.join('; '), 'unreadable');
      } else {
        clearBanner('unreadable');
      }
    }
    onAuthenticated();
    return body;
  }

  // ------------------------------------------------------------------------------------------
  // Banner (errors, lost stream).
  const banner = () => document.querySelector('[data-testid="error-banner"]');
  let bannerSource = null;
  function showBanner(text, source, info) {
    const b = banner();
    if (!b) return;
    b.textContent = text;
    b.classList.toggle('info', !!info);
    b.hidden = false;
    bannerSource = source;
  }
  function clearBanner(source) {
    const b = banner();
    if (b && (!source || bannerSource === source)) { b.hidden = true; bannerSource = null; }
  }

  // ------------------------------------------------------------------------------------------
  // Live state shared by every page, fed by the stream.
  const live = {
    stats: null,               // last `stats` event
    sinceStats: 0,             // events received after it
    eventsShown: 0,            // the events total on screen (never goes down)
    mode: null,
    tenant: null,
    seconds: new Map(),        // unix second -> {events, spans, errors}
    connectedAt: null,
    spansSinceOverview: 0,
    errorsSinceOverview: 0,
    pending: [],               // spans waiting for the next frame
    agents: new Set(),
  };
  function bumpSecond(field, n) {
    const s = Math.floor(Date.now() / 1000);
    let b = live.seconds.get(s);
    if (!b) {
      b = { events: 0, spans: 0, errors: 0 };
      live.seconds.set(s, b);
      if (live.seconds.size > 900) {
        for (const k of live.seconds.keys()) { if (k < s - 840) live.seconds.delete(k); else break; }
      }
    }
    b[field] += n;
  }
  function eventsTotal() {
    const base = live.stats ? num(live.stats.events_total) + live.sinceStats : live.sinceStats;
    live.eventsShown = Math.max(live.eventsShown, base);
    return live.eventsShown;
  }

  let es = null;
  let reconnectTimer = null;
  function startStream() {
    if (es || authNeeded) return;
    clearTimeout(reconnectTimer);
    const url = '/api/stream' + (token ? '?access_token=' + encodeURIComponent(token) : '');
    es = new EventSource(url);
    setLiveState('connecting');
    es.onopen = () => {
      live.connectedAt = Date.now();
      setLiveState('live');
      clearBanner('stream');
    };
    es.onerror = () => {
      if (!es) return;
      if (es.readyState === EventSource.CLOSED) {
        // A refused or failed request: probe the API (a 401 brings up the token form).
        stopStream();
        setLiveState('error');
        showBanner('Live stream disconnected; reconnecting…', 'stream', true);
        reconnectTimer = setTimeout(() => {
          api('/api/overview', { minutes: 1 }).then(startStream, () => {
            if (!authNeeded) reconnectTimer = setTimeout(startStream, 3000);
          });
        }, 1500);
      } else {
        setLiveState('connecting');
      }
    };
    const on = (name, fn) => es.addEventListener(name, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      M.eventsReceived++;
      fn(data);
    });
    on('span', onSpan);
    on('log', (d) => { countEvent(); if (d.agent) live.agents.add(d.agent); dispatch('onLog', d); });
    on('anomaly', (d) => { countEvent(); dispatch('onAnomaly', d); });
    on('alert', (d) => { countEvent(); dispatch('onAlert', d); });
    on('permission', (d) => { countEvent(); dispatch('onPermission', d); });
    on('stats', onStats);
  }
  function stopStream() {
    if (es) { es.close(); es = null; }
  }
  function countEvent() {
    live.sinceStats++;
    bumpSecond('events', 1);
    scheduleFrame();
  }
  function onSpan(s) {
    live.sinceStats++;
    bumpSecond('events', 1);
    bumpSecond('spans', 1);
    live.spansSinceOverview++;
    if (s.status === 'error') { bumpSecond('errors', 1); live.errorsSinceOverview++; }
    if (s.agent) live.agents.add(s.agent);
    live.pending.push(s);
    scheduleFrame();
  }
  function onStats(st) {
    live.stats = st;
    live.sinceStats = 0;
    scheduleFrame();
  }

  // Stream events are applied once per frame (the DOM changes the reader sees), then each
  // span's record->visible latency is taken. Hidden tabs get no animation frames, so a timer
  // stands in for them.
  let frameReq = null;
  let frameTimer = null;
  function scheduleFrame() {
    if (frameReq !== null || frameTimer !== null) return;
    frameReq = requestAnimationFrame(runFrame);
    frameTimer = setTimeout(runFrame, document.hidden ? 0 : 100);
  }
  function runFrame() {
    if (frameReq !== null) cancelAnimationFrame(frameReq);
    clearTimeout(frameTimer);
    frameReq = frameTimer = null;
    const spans = live.pending;
    live.pending = [];
    renderLivePill();
    if (page) {
      for (const s of spans) if (page.onSpan) page.onSpan(s);
      if (page.onFrame) page.onFrame(spans);
    }
    const now = Date.now();
    for (const s of spans) {
      if (s.end_ns) M.latencies.push(now - num(s.end_ns) / 1e6);
    }
    if (M.latencies.length > MAX_LATENCIES) M.latencies.splice(0, M.latencies.length - MAX_LATENCIES);
    M.spansRendered += spans.length;
  }
  function dispatch(fn, data) {
    if (page && page[fn]) page[fn](data);
  }

  function setLiveState(state) {
    const pill = document.querySelector('[data-testid="live-status"]');
    if (!pill) return;
    pill.dataset.state = state;
    renderLivePill();
  }
  function renderLivePill() {
    const pill = document.querySelector('[data-testid="live-status"]');
    if (!pill) return;
    const state = pill.dataset.state;
    const text = pill.querySelector('.live-text');
    if (state === 'live') {
      const rate = live.stats ? num(live.stats.event_rate) : 0;
      text.textContent = 'live · ' + fmtCompact(rate) + ' ev/s';
      pill.title = fmtInt(eventsTotal()) + ' events recorded';
    } else {
      text.textContent = state === 'error' ? 'offline' : state === 'locked' ? 'signed out' : 'connecting';
    }
  }
  function setMode(mode, tenant) {
    if (!mode) return;
    live.mode = mode;
    live.tenant = tenant || null;
    const pill = document.querySelector('[data-testid="mode"]');
    if (pill) {
      pill.hidden = false;
      pill.textContent = (mode === 'store' ? 'store' : 'live agent') + (tenant ? ' · ' + tenant : '');
    }
  }

  // ------------------------------------------------------------------------------------------
  // Charts: line charts with axes, gridlines, an optional band, a legend and a hover read-out.
  function niceStep(range, target) {
    const raw = range / Math.max(1, target);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

  function makeChart(testid, cls) {
    const wrap = h('div', { class: 'chart-wrap' });
    const svg = svgEl('svg');
    svg.setAttribute('class', 'chart ' + (cls || ''));
    svg.setAttribute('data-testid', testid);
    svg.setAttribute('data-version', '0');
    svg.setAttribute('role', 'img');
    wrap.appendChild(svg);
    const tip = h('div', { class: 'tip', hidden: true });
    wrap.appendChild(tip);
    wrap.addEventListener('mousemove', (e) => chartHover(wrap, e));
    wrap.addEventListener('mouseleave', () => { tip.hidden = true; const c = svg.querySelector('.cursor'); if (c) c.remove(); });
    wrap.svg = svg;
    wrap.tip = tip;
    return wrap;
  }

  // opts: {series: [{label, color, points: [[t_ms, v]]}], band: [[t, lo, hi, mean]], yFmt, label, xDomain}
  function drawChart(wrap, opts) {
    const svg = wrap.svg;
    const W = Math.max(120, svg.clientWidth || svg.getBoundingClientRect().width || 300);
    const H = Math.max(60, svg.clientHeight || 160);
    const yFmt = opts.yFmt || fmtCompact;
    wrap.opts = opts;
    const series = opts.series.filter((s) => s.points && s.points.length);
    const band = (opts.band || []).filter((b) => isFinite(b[1]) && isFinite(b[2]));
    let tMin = Infinity, tMax = -Infinity, vMax = 0;
    for (const s of series) for (const [t, v] of s.points) {
      if (t < tMin) tMin = t;
      if (t > tMax) tMax = t;
      if (v !== null && v > vMax) vMax = v;
    }
    for (const [t, , hi] of band) {
      if (t < tMin) tMin = t;
      if (t > tMax) tMax = t;
      if (hi > vMax) vMax = hi;
    }
    if (opts.xDomain) { tMin = opts.xDomain[0]; tMax = opts.xDomain[1]; }
    const points = series.reduce((n, s) => n + s.points.filter((p) => p[1] !== null).length, 0);
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('data-version', String(+svg.getAttribute('data-version') + 1));
    svg.setAttribute('data-points', String(points));
    const last = series.length ? series[0].points.filter((p) => p[1] !== null).pop() : null;
    svg.setAttribute('data-last', last ? String(last[1]) : '');
    if (opts.label) svg.setAttribute('aria-label', opts.label);
    if (!series.length && !band.length) {
      svg.innerHTML = `<text class="empty" x="${W / 2}" y="${H / 2}" text-anchor="middle">No data in this window yet</text>`;
      wrap.scale = null;
      return;
    }
    if (!(tMax > tMin)) { tMin -= 30000; tMax += 1000; }
    const step = niceStep(vMax > 0 ? vMax : 1, H < 140 ? 3 : 4);
    const yTop = Math.max(step, Math.ceil((vMax * 1.05) / step) * step);
    const yTicks = [];
    for (let v = 0; v <= yTop + step / 2; v += step) yTicks.push(v);
    const labelW = Math.max(...yTicks.map((v) => yFmt(v).length)) * 6.2 + 10;
    const L = Math.ceil(labelW), R = 10, T = 8, B = 20;
    const x = (t) => L + ((t - tMin) / (tMax - tMin)) * (W - L - R);
    const y = (v) => T + (1 - v / yTop) * (H - T - B);
    const out = [];
    for (const v of yTicks) {
      const yy = Math.round(y(v)) + 0.5;
      out.push(`<line class="gridline" x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}"/>`);
      out.push(`<text x="${L - 6}" y="${yy + 3.5}" text-anchor="end">${escXml(yFmt(v))}</text>`);
    }
    const span = tMax - tMin;
    const wantTicks = Math.max(2, Math.floor((W - L - R) / 75));
    const tStep = TIME_STEPS.find((s) => span / s <= wantTicks) || 86400000;
    const tz = new Date().getTimezoneOffset() * 60000;
    for (let t = Math.ceil((tMin - tz) / tStep) * tStep + tz; t <= tMax; t += tStep) {
      const xx = x(t);
      if (xx < L + 14 || xx > W - R - 14) continue;
      out.push(`<line class="gridline" x1="${xx}" x2="${xx}" y1="${T}" y2="${H - B}"/>`);
      out.push(`<text x="${xx}" y="${H - 5}" text-anchor="middle">${tStep < 60000 ? fmtClock(t) : fmtClock(t).slice(0, 5)}</text>`);
    }
    out.push(`<line class="axis" x1="${L}" x2="${W - R}" y1="${Math.round(y(0)) + 0.5}" y2="${Math.round(y(0)) + 0.5}"/>`);
    if (band.length) {
      const sorted = band.slice().sort((a, b) => a[0] - b[0]);
      const top = sorted.map((b) => `${x(b[0]).toFixed(1)},${y(b[2]).toFixed(1)}`);
      const bot = sorted.slice().reverse().map((b) => `${x(b[0]).toFixed(1)},${y(Math.max(0, b[1])).toFixed(1)}`);
      out.push(`<polygon class="band" data-testid="forecast-band" points="${top.concat(bot).join(' ')}"/>`);
      const mean = sorted.filter((b) => isFinite(b[3]));
      if (mean.length > 1) out.push(`<path class="band-mean" d="${pathOf(mean.map((b) => [b[0], b[3]]), x, y)}"/>`);
    }
    series.forEach((s, i) => {
      const pts = s.points.slice().sort((a, b) => a[0] - b[0]);
      const color = `var(${s.color || PALETTE[i % PALETTE.length]})`;
      if (opts.area && i === 0 && pts.length > 1 && pts.every((p) => p[1] !== null)) {
        const d = pathOf(pts, x, y) + `L${x(pts[pts.length - 1][0]).toFixed(1)},${y(0)}L${x(pts[0][0]).toFixed(1)},${y(0)}Z`;
        out.push(`<path class="area" style="fill:${color}" d="${d}"/>`);
      }
      // Lone points (between gaps) get a dot, runs get a line.
      pts.forEach((p, j) => {
        if (p[1] !== null && (j === 0 || pts[j - 1][1] === null) && (j === pts.length - 1 || pts[j + 1][1] === null)) {
          out.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="2" style="fill:${color}"/>`);
        }
      });
      if (pts.some((p, j) => p[1] !== null && j > 0 && pts[j - 1][1] !== null)) {
        out.push(`<path class="line" style="stroke:${color}" d="${pathOf(pts, x, y)}"/>`);
      }
    });
    svg.innerHTML = out.join('');
    wrap.scale = { x, y, L, R, T, B, W, H, tMin, tMax, yFmt, series, band };
  }
  // A path through the points; a null value breaks the line.
  function pathOf(pts, x, y) {
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (p[1] === null || p[1] === undefined) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1);
      pen = true;
    }
    return d;
  }
  function chartHover(wrap, e) {
    const sc = wrap.scale;
    if (!sc) return;
    const rect = wrap.svg.getBoundingClientRect();
    const px = ((e.clientX - rect.left) / rect.width) * sc.W;
    if (px < sc.L || px > sc.W - sc.R) { wrap.tip.hidden = true; return; }
    const t = sc.tMin + ((px - sc.L) / (sc.W - sc.L - sc.R)) * (sc.tMax - sc.tMin);
    let best = null;
    for (const s of sc.series) for (const p of s.points) if (p[1] !== null && (best === null || Math.abs(p[0] - t) < Math.abs(best - t))) best = p[0];
    if (best === null) return;
    const rows = [];
    sc.series.forEach((s, i) => {
      const p = s.points.find((q) => q[0] === best);
      if (p && p[1] !== null) rows.push(`<div><span class="sw" style="background:var(${s.color || PALETTE[i % PALETTE.length]})"></span>${escXml(s.label)}: <b>${escXml(sc.yFmt(p[1]))}</b></div>`);
    });
    const b = sc.band.find((q) => q[0] === best);
    if (b) rows.push(`<div>forecast: ${escXml(sc.yFmt(b[1]))} – ${escXml(sc.yFmt(b[2]))}</div>`);
    wrap.tip.innerHTML = `<div class="t">${fmtClock(best)}</div>` + rows.join('');
    wrap.tip.querySelectorAll('.sw').forEach((s) => { s.style.cssText += ';display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:5px'; });
    wrap.tip.hidden = false;
    const cx = sc.x(best);
    let cur = wrap.svg.querySelector('.cursor');
    if (!cur) { cur = svgEl('line'); cur.setAttribute('class', 'cursor'); wrap.svg.appendChild(cur); }
    cur.setAttribute('x1', cx); cur.setAttribute('x2', cx); cur.setAttribute('y1', sc.T); cur.setAttribute('y2', sc.H - sc.B);
    const left = (cx / sc.W) * rect.width;
    const tipW = wrap.tip.offsetWidth;
    wrap.tip.style.left = Math.min(Math.max(0, left + 12), rect.width - tipW) + 'px';
    wrap.tip.style.top = '4px';
  }
  function legend(items) {
    return h('div', { class: 'legend' }, items.map(([label, color, band]) =>
      h('span', null, h('span', { class: 'sw' + (band ? ' band' : ''), style: band ? null : { background: `var(${color})` } }), label)));
  }

  // ------------------------------------------------------------------------------------------
  // Pages. Each is {title, el, onSpan?, onFrame?, onLog?, ..., destroy?}.
  let page = null;
  const app = () => document.getElementById('app');
  const timers = [];
  function every(ms, fn) { timers.push(setInterval(fn, ms)); }
  function later(ms, fn) { timers.push(setTimeout(fn, ms)); }
  // Every view is addressable by URL: a page reads its filters and time range from the hash's
  // query (`#/threads?agent=a&minutes=60`) and writes them back as they change, so a copied or
  // saved link restores the view.
  const hashParams = () => new URLSearchParams((location.hash.split('?')[1]) || '');
  function setHashParams(path, values) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== '' && v !== null && v !== undefined) p.set(k, v);
    const qs = p.toString();
    history.replaceState(null, '', '#' + path + (qs ? '?' + qs : ''));
  }
  // A window `<select>` over `choices` ([minutes, label]), showing `minutes` even when it is not
  // one of them (a link may name any window).
  function windowSelect(testid, choices, minutes, onchange) {
    const list = choices.slice();
    if (minutes && !list.some(([v]) => String(v) === String(minutes))) list.push([+minutes, 'Last ' + minutes + ' min']);
    const sel = h('select', { 'aria-label': 'Time window', 'data-testid': testid, onchange: () => onchange(sel.value) },
      list.map(([v, l]) => h('option', { value: v }, l)));
    sel.value = String(minutes);
    return sel;
  }
  const windowParam = (fallback) => {
    const m = Number(hashParams().get('minutes'));
    return Number.isInteger(m) && m >= 1 && m <= 43200 ? m : fallback;
  };
  // `name` is the page's name (`M.page`); a page that is no longer shown (its answer came late)
  // marks nothing.
  function markLoaded(name) {
    if (M.page && name !== M.page) return;
    if (M.loaded !== name) {
      M.loaded = name;
      M.loadedAt = performance.now();
      document.body.dataset.loaded = name;
    }
  }

  // ---- Overview ----
  function overviewPage() {
    let data = null;
    let minutes = windowParam(15);
    const focusOp = hashParams().get('op');
    let focused = false;
    const opCharts = new Map();
    let fetchedAt = 0;
    const counter = (key, label, foot) => {
      const value = h('div', { class: 'value', 'data-testid': 'counter-' + key, 'data-value': '' }, '–');
      const footEl = h('div', { class: 'foot' }, foot || '\u00a0');
      const el = h('div', { class: 'panel counter', 'data-counter': key }, h('div', { class: 'label' }, label), value, footEl);
      return { el, value, foot: footEl, last: null };
    };
    const counters = {
      rate: counter('event-rate', 'Event rate', 'events / s, last 10 s'),
      active: counter('active-threads', 'Active threads', 'with an event in the last minute'),
      errors: counter('error-rate', 'Error rate', 'errored spans'),
      total: counter('events-total', 'Events', 'recorded'),
      dropped: counter('dropped', 'Dropped', 'buffer full'),
      lagged: counter('lagged', 'Stream lag', 'events this page missed'),
    };
    function setCounter(c, raw, text, unit, bad) {
      const key = text + '|' + (unit || '');
      c.value.dataset.value = String(raw);
      if (c.last === key) return;
      c.last = key;
      c.value.textContent = text;
      if (unit) c.value.appendChild(h('span', { class: 'unit' }, unit));
      c.el.classList.toggle('bad', !!bad);
    }
    const rateChart = makeChart('chart-event-rate', 'tall');
    const tokensChart = makeChart('chart-model-tokens');
    const costChart = makeChart('chart-model-cost');
    const healthBody = h('div', { class: 'panel-body', 'data-testid': 'health' });
    const opsGrid = h('div', { class: 'grid cols-3', 'data-testid': 'operations' });
    const modelsBody = h('div', { class: 'table-wrap' });
    const scoresBody = h('div', { class: 'table-wrap', 'data-testid': 'overview-scores' });
    const tokensLegend = h('div');
    const costLegend = h('div');
    const windowSel = windowSelect('overview-window', [[15, 'Last 15 min'], [60, 'Last hour'], [360, 'Last 6 h'], [1440, 'Last 24 h']], minutes,
      (v) => { minutes = +v; setHashParams('/', { minutes: minutes === 15 ? '' : minutes, op: focusOp, slo_ms: hashParams().get('slo_ms') }); load(); });
    const sub = h('span', { class: 'sub' });

    const el = h('div', { 'data-testid': 'page-overview' },
      h('div', { class: 'page-head' }, h('h1', null, 'Overview'), sub, h('span', { class: 'spacer' }), h('div', { class: 'filters', style: { margin: 0 } }, windowSel)),
      h('div', { class: 'grid counters' }, Object.values(counters).map((c) => c.el)),
      h('div', { class: 'grid cols-3' },
        h('div', { class: 'panel span2 fill' },
          h('div', { class: 'panel-head' }, h('h2', null, 'Event rate'), h('span', { class: 'hint' }, 'events / s'),
            h('div', { class: 'right' }, legend([['events', '--c1'], ['errors', '--c5']]))),
          h('div', { class: 'panel-body grow' }, rateChart)),
        h('div', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, 'Health')), healthBody)),
      h('div', { class: 'section-title' }, 'Latency by operation'),
      opsGrid,
      h('div', { class: 'section-title' }, 'Tokens and cost by model'),
      h('div', { class: 'grid cols-2' },
        h('div', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, 'Tokens'), h('span', { class: 'hint', 'data-hint': 'tokens' }, 'per bucket'), h('div', { class: 'right' }, tokensLegend)), h('div', { class: 'panel-body' }, tokensChart)),
        h('div', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, 'Cost'), h('span', { class: 'hint', 'data-hint': 'cost' }, 'USD per bucket'), h('div', { class: 'right' }, costLegend)), h('div', { class: 'panel-body' }, costChart))),
      h('div', { class: 'panel', style: { marginTop: '16px' } }, modelsBody),
      h('div', { class: 'section-title' }, 'Scores and feedback'),
      h('div', { class: 'panel' }, scoresBody));

    function renderScores() {
      const scores = (data && data.scores) || [];
      if (!scores.length) {
        scoresBody.replaceChildren(h('div', { class: 'empty-state' }, 'No scores in this window yet.'));
        return;
      }
      scoresBody.replaceChildren(h('table', { class: 'data', 'data-testid': 'scores-table' },
        h('thead', null, h('tr', null, h('th', null, 'Score'), h('th', { class: 'num' }, 'Count'), h('th', { class: 'num' }, 'Mean'), h('th', { class: 'num' }, 'Lowest'))),
        h('tbody', null, scores.map((s) => h('tr', { 'data-testid': 'score-row', 'data-score': s.name },
          h('td', null, s.name), h('td', { class: 'num' }, fmtInt(s.count)),
          h('td', { class: 'num' }, num(s.mean).toFixed(3)), h('td', { class: 'num' }, num(s.min).toFixed(3)))))));
    }

    function renderCounters() {
      const st = live.stats;
      const rate = st ? num(st.event_rate) : data ? num(data.event_rate) : 0;
      setCounter(counters.rate, rate, fmtCompact(rate), '/s');
      const active = st ? num(st.active_threads) : data ? num(data.active_threads) : 0;
      setCounter(counters.active, active, fmtInt(active));
      counters.active.foot.textContent = 'with an event in the last minute';
      const spans = data ? data.operations.reduce((n, o) => n + num(o.count), 0) : 0;
      const errs = data ? data.operations.reduce((n, o) => n + num(o.errors), 0) : 0;
      const allSpans = spans + live.spansSinceOverview;
      const er = allSpans ? (errs + live.errorsSinceOverview) / allSpans : data ? num(data.error_rate) : 0;
      setCounter(counters.errors, er, fmtPct(er), null, er > 0.05);
      counters.errors.foot.textContent = fmtInt(errs + live.errorsSinceOverview) + ' of ' + fmtInt(allSpans) + ' spans';
      const total = Math.max(eventsTotal(), data ? num(data.events_total) : 0);
      setCounter(counters.total, total, fmtCompact(total));
      counters.total.foot.textContent = fmtInt(total) + ' recorded';
      const health = (data && data.health) || {};
      const dropped = st && st.dropped !== undefined ? num(st.dropped) : num(health.dropped);
      setCounter(counters.dropped, dropped, fmtInt(dropped), null, dropped > 0);
      const lagged = st ? num(st.lagged) : 0;
      setCounter(counters.lagged, lagged, fmtInt(lagged), null, lagged > 0);
    }

    function rateSeries() {
      const evPts = [], errPts = [];
      let liveFrom = Infinity;
      if (live.connectedAt) liveFrom = Math.floor(live.connectedAt / 1000) * 1000 + 1000;
      const rs = (data && data.rate_series) || [];
      const stepMs = num(data && data.bucket_ms) || (rs.length > 1 ? Math.max(1000, rs[1].t_ms - rs[0].t_ms) : 10000);
      const nowMs = Date.now();
      for (const b of rs) {
        if (b.t_ms + stepMs > liveFrom) break;
        const end = Math.min(b.t_ms + stepMs, nowMs);
        const secs = Math.max(1, (end - b.t_ms) / 1000);
        evPts.push([end, num(b.events) / secs]);
        errPts.push([end, num(b.errors) / secs]);
      }
      if (isFinite(liveFrom)) {
        // Whole seconds since the stream opened, then the trailing second ending now.
        const nowS = Math.floor(nowMs / 1000);
        for (let s = liveFrom / 1000; s < nowS; s++) {
          const b = live.seconds.get(s);
          evPts.push([(s + 1) * 1000, b ? b.events : 0]);
          errPts.push([(s + 1) * 1000, b ? b.errors : 0]);
        }
        const frac = (nowMs % 1000) / 1000;
        const cur = live.seconds.get(nowS) || { events: 0, errors: 0 };
        const prev = live.seconds.get(nowS - 1) || { events: 0, errors: 0 };
        if (nowMs - 1000 >= liveFrom) {
          evPts.push([nowMs, cur.events + prev.events * (1 - frac)]);
          errPts.push([nowMs, cur.errors + prev.errors * (1 - frac)]);
        }
      }
      const windowStart = nowMs - minutes * 60000;
      return {
        ev: evPts.filter((p) => p[0] >= windowStart),
        err: errPts.filter((p) => p[0] >= windowStart),
        domain: [Math.max(windowStart, evPts.length ? evPts[0][0] : windowStart), nowMs],
      };
    }
    function drawRate() {
      const r = rateSeries();
      drawChart(rateChart, {
        label: 'Event rate, events per second',
        series: [{ label: 'events/s', color: '--c1', points: r.ev }, { label: 'errors/s', color: '--c5', points: r.err }],
        area: true,
        xDomain: r.ev.length > 1 ? r.domain : null,
      });
    }

    function opKey(o) { return o.kind + '/' + o.name; }
    function renderOps() {
      const ops = (data && data.operations) || [];
      if (!ops.length) {
        opsGrid.replaceChildren(h('div', { class: 'panel empty-state' }, 'No spans recorded in this window yet.'));
        opCharts.clear();
        return;
      }
      const seen = new Set();
      const order = ops.slice().sort((a, b) => num(b.count) - num(a.count));
      const cards = [];
      for (const o of order) {
        const key = opKey(o);
        seen.add(key);
        let card = opCharts.get(key);
        if (!card) {
          const chart = makeChart('op-chart', 'small');
          chart.svg.setAttribute('data-op', key);
          const stats = h('div', { class: 'stats' });
          const hasBand = h('span');
          const el = h('div', { class: 'panel op-card ' + kindClass(o.kind), 'data-testid': 'op-card', 'data-op': key },
            h('div', { class: 'panel-head' }, h('span', { class: 'kind-dot' }), h('span', { class: 'name', title: key }, o.name),
              h('span', { class: 'hint' }, KIND_LABEL[o.kind] || o.kind), h('div', { class: 'right' }, hasBand)),
            h('div', { class: 'panel-body' }, stats, chart));
          card = { el, chart, stats, hasBand, op: o, liveCount: 0 };
          opCharts.set(key, card);
        }
        card.op = o;
        card.liveCount = 0;
        cards.push(card.el);
      }
      for (const k of [...opCharts.keys()]) if (!seen.has(k)) opCharts.delete(k);
      opsGrid.replaceChildren(...cards);
      for (const c of opCharts.values()) renderOpStats(c);
      // `#/?op=<kind>/<name>` (the palette's operations) points at one chart: marked, and
      // scrolled to once.
      const focus = opCharts.get(focusOp);
      if (focus) {
        focus.el.classList.add('focused');
        if (!focused) { focused = true; focus.el.scrollIntoView({ block: 'center' }); }
      }
    }
    function renderOpStats(c) {
      const o = c.op;
      c.stats.replaceChildren(
        h('span', null, h('b', { 'data-testid': 'op-count' }, fmtInt(num(o.count) + c.liveCount)), ' calls'),
        h('span', { class: num(o.errors) ? 'has-err' : null }, h('b', null, fmtInt(o.errors)), ' err'),
        h('span', null, 'p50 ', h('b', null, fmtMsShort(num(o.p50_ms)))),
        h('span', null, 'p95 ', h('b', null, fmtMsShort(num(o.p95_ms)))),
        h('span', null, 'p99 ', h('b', null, fmtMsShort(num(o.p99_ms)))));
    }
    function drawOps() {
      for (const c of opCharts.values()) {
        const s = c.op.series || [];
        const f = c.op.forecast || [];
        c.hasBand.replaceChildren(legend([['p50', '--c2'], ['p95', '--c1'], ['p99', '--c5']].concat(f.length ? [['forecast', null, true]] : [])));
        drawChart(c.chart, {
          label: 'Latency of ' + opKey(c.op),
          yFmt: fmtMsShort,
          series: [
            { label: 'p50', color: '--c2', points: s.map((p) => [p.t_ms, orNull(p.p50_ms)]) },
            { label: 'p95', color: '--c1', points: s.map((p) => [p.t_ms, orNull(p.p95_ms)]) },
            { label: 'p99', color: '--c5', points: s.map((p) => [p.t_ms, orNull(p.p99_ms)]) },
          ],
          band: f.map((p) => [p.t_ms, num(p.lo_ms), num(p.hi_ms), p.mean_ms]),
        });
        // The view files' marks on the card (the SLO crossing and changepoints of advice.js).
        for (const decorate of opCardDecorators) {
          try { decorate({ el: c.el, chart: c.chart, op: c.op }, data); } catch (_) { /* a mark is optional */ }
        }
      }
    }

    function renderModels() {
      const models = ((data && data.models) || []).slice().sort((a, b) => num(b.cost_usd) - num(a.cost_usd) || num(b.calls) - num(a.calls));
      const colorOf = (i) => PALETTE[i % PALETTE.length];
      const step = num(data && data.bucket_ms) || models.reduce((s, m) => (m.series && m.series.length > 1 ? m.series[1].t_ms - m.series[0].t_ms : s), 0);
      const per = step ? 'per ' + fmtMs(step).replace(' ', '\u00a0') : 'per bucket';
      el.querySelector('[data-hint="tokens"]').textContent = per;
      el.querySelector('[data-hint="cost"]').textContent = 'USD ' + per;
      drawChart(tokensChart, {
        label: 'Tokens per model',
        series: models.map((m, i) => ({ label: m.model, color: colorOf(i), points: (m.series || []).map((p) => [p.t_ms, num(p.tokens)]) })),
      });
      drawChart(costChart, {
        label: 'Cost per model',
        yFmt: (v) => fmtUsd(v),
        series: models.map((m, i) => ({ label: m.model, color: colorOf(i), points: (m.series || []).map((p) => [p.t_ms, num(p.cost_usd)]) })),
      });
      const lg = legend(models.map((m, i) => [m.model, colorOf(i)]));
      tokensLegend.replaceChildren(lg);
      costLegend.replaceChildren(lg.cloneNode(true));
      if (!models.length) {
        modelsBody.replaceChildren(h('div', { class: 'empty-state' }, 'No LLM calls in this window yet.'));
        return;
      }
      modelsBody.replaceChildren(h('table', { class: 'data', 'data-testid': 'models-table' },
        h('thead', null, h('tr', null, h('th', null, 'Model'), h('th', { class: 'num' }, 'Calls'), h('th', { class: 'num' }, 'Input tokens'),
          h('th', { class: 'num' }, 'Output tokens'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num hide-sm' }, 'Cost / call'))),
        h('tbody', null, models.map((m, i) => h('tr', { 'data-model': m.model },
          h('td', null, h('span', { class: 'kind-dot', style: { background: `var(${colorOf(i)})` } }), m.model),
          h('td', { class: 'num' }, fmtInt(m.calls)), h('td', { class: 'num' }, fmtInt(m.input_tokens)),
          h('td', { class: 'num' }, fmtInt(m.output_tokens)), h('td', { class: 'num' }, fmtUsd(m.cost_usd)),
          h('td', { class: 'num hide-sm' }, fmtUsd(num(m.cost_usd) / Math.max(1, num(m.calls)))))))));
    }

    function renderHealth() {
      const hl = (data && data.health) || {};
      const get = (path) => path.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), hl);
      const first = (...paths) => paths.map(get).find((v) => v !== undefined && v !== null);
      const rows = [];
      const add = (label, value, bad) => { if (value !== undefined && value !== null && value !== '') rows.push([label, value, bad]); };
      const n = (v) => (typeof v === 'number' ? fmtInt(v) : v);
      if (typeof hl.healthy === 'boolean') add('Status', tag(hl.healthy ? 'healthy' : 'unhealthy', hl.healthy ? 'ok' : 'error', 'health-status'));
      add('Recorded', n(first('recorded', 'recorder.accounting.recorded')));
      add('Delivered', n(first('delivered', 'recorder.accounting.delivered')));
      const dropped = first('dropped', 'recorder.accounting.dropped');
      add('Dropped', n(dropped), num(dropped) > 0);
      add('Stream lag', n(get('lagged')), num(get('lagged')) > 0);
      const lag = get('recorder.pipeline_lag');
      if (lag && typeof lag === 'object' && 'secs' in lag) add('Pipeline lag', fmtMs(num(lag.secs) * 1000 + num(lag.nanos) / 1e6));
      const buf = get('recorder.buffer');
      if (buf && num(buf.capacity)) add('Buffer', fmtInt(buf.fill) + ' / ' + fmtInt(buf.capacity));
      const sinks = get('recorder.sinks') || get('sinks');
      if (Array.isArray(sinks) && sinks.length) {
        const failing = sinks.filter((k) => k && typeof k === 'object' && k.state && k.state !== 'ok');
        add('Sinks', failing.length
          ? failing.map((k) => tag((k.name || '?') + ': ' + k.state, 'error'))
          : [tag('all ok', 'ok'), ' ', sinks.map((k) => k && k.name).filter(Boolean).join(', ')], failing.length > 0);
      }
      add('Anomalies found', n(get('models.anomalies')));
      if ('otlp' in hl) {
        // Per signal, as the health report has it: off (not exported), ok, or degraded (a
        // request failed and none succeeded since, or something was dropped).
        const o = hl.otlp;
        const signals = o && typeof o === 'object'
          ? ['traces', 'logs', 'metrics'].filter((k) => o[k] && typeof o[k] === 'object').map((k) => {
            const state = !o[k].enabled ? 'off' : o[k].healthy ? 'ok' : 'degraded';
            const t = tag(k + ' ' + state, state === 'ok' ? 'ok' : state === 'degraded' ? 'error' : '', 'otlp-' + k);
            t.dataset.state = state;
            if (state === 'degraded' && (o[k].last_error || o[k].last_rejection)) t.title = o[k].last_rejection || o[k].last_error;
            return t;
          })
          : [];
        const degraded = signals.some((t) => t.dataset.state === 'degraded');
        add('OTLP export', o === null ? 'off' : signals.length ? signals.flatMap((t, i) => (i ? [' ', t] : [t])) : String(o), degraded);
      }
      add('Files', n(get('files')));
      if (typeof get('bytes') === 'number') add('Size on disk', fmtBytes(get('bytes')));
      add('Leftover files', n(get('leftovers')), num(get('leftovers')) > 0);
      add('Store', typeof get('store_root') === 'string' ? h('code', { title: get('store_root') }, get('store_root')) : null);
      // Everything, flattened, for the curious (and for shapes this page does not know).
      const all = [];
      const walk = (obj, prefix) => {
        for (const [k, v] of Object.entries(obj)) {
          const key = prefix ? prefix + '.' + k : k;
          if (v && typeof v === 'object') walk(v, key);
          else all.push([key, v]);
        }
      };
      walk(hl, '');
      if (rows.length < 3) for (const [k, v] of all.slice(0, 10)) add(k.replace(/_/g, ' '), typeof v === 'number' ? fmtCompact(v) : v === null ? '–' : String(v));
      if (!rows.length) { healthBody.replaceChildren(h('div', { class: 'empty-state' }, 'No health report.')); return; }
      const fmtV = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? fmtInt(v) : fmtCompact(v)) : typeof v === 'boolean' ? (v ? 'yes' : 'no') : v === null ? '–' : String(v));
      healthBody.replaceChildren(
        h('table', { class: 'attrs health' }, h('tbody', null, rows.slice(0, 14).map(([k, v, bad]) =>
          h('tr', { 'data-key': k }, h('td', null, k), h('td', { class: 'num' + (bad ? ' bad' : '') }, v))))),
        all.length > rows.length ? h('details', { class: 'all-fields' }, h('summary', null, 'All ' + all.length + ' fields'),
          h('table', { class: 'attrs' }, h('tbody', null, all.map(([k, v]) => h('tr', null, h('td', null, k), h('td', { class: 'num' }, fmtV(v))))))) : '');
    }

    let chartsDue = false;
    let lastCharts = 0;
    let chartTimer = null;
    function scheduleCharts() {
      if (chartTimer) { chartsDue = true; return; }
      const wait = Math.max(0, 250 - (performance.now() - lastCharts));
      chartTimer = setTimeout(() => {
        chartTimer = null;
        lastCharts = performance.now();
        drawRate();
        if (chartsDue) { chartsDue = false; scheduleCharts(); }
      }, wait);
    }
    function drawAll() {
      drawRate();
      drawOps();
      renderModels();
      renderScores();
    }

    async function load() {
      try {
        const d = await api('/api/overview', { minutes });
        data = d;
        fetchedAt = Date.now();
        live.spansSinceOverview = 0;
        live.errorsSinceOverview = 0;
        setMode(d.mode, d.tenant);
        sub.textContent = (d.mode === 'store' ? 'Store' : 'Live agent') + (d.tenant ? ' · tenant ' + d.tenant : '') + ' · updated ' + fmtClock(d.now_ms || Date.now());
        renderCounters();
        renderHealth();
        renderOps();
        drawAll();
        markLoaded('overview');
      } catch (e) {
        if (!data && e.status !== 401) opsGrid.replaceChildren(h('div', { class: 'panel empty-state' }, 'Could not load the overview: ' + e.message));
      }
    }
    load();
    every(5000, load);
    every(1000, scheduleCharts);

    return {
      title: 'Overview',
      el,
      onSpan(s) {
        const c = opCharts.get(s.kind + '/' + s.name);
        if (c) c.liveCount++;
      },
      onFrame(spans) {
        renderCounters();
        if (spans.length) {
          const touched = new Set(spans.map((s) => s.kind + '/' + s.name));
          for (const k of touched) { const c = opCharts.get(k); if (c) renderOpStats(c); }
          scheduleCharts();
        }
      },
      resize() { if (data) drawAll(); },
      get fetchedAt() { return fetchedAt; },
    };
  }
  function fmtMsShort(ms) {
    if (ms >= 1000) return +(ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + 's';
    return +ms.toFixed(ms < 1 ? 2 : ms < 10 ? 1 : 0) + 'ms';
  }

  // ---- Threads list ----
  function threadsPage() {
    const params = hashParams();
    const f = { q: params.get('q') || '', agent: params.get('agent') || '', status: params.get('status') || '', min_ms: params.get('min_ms') || '', minutes: windowParam('') };
    let rows = [];              // summaries, newest first
    let total = 0;
    let truncated = false;
    let paused = false;
    const byId = new Map();
    const fresh = new Set();
    const agents = new Set(live.agents);

    const q = h('input', { type: 'search', placeholder: 'Search thread id, agent or tenant', value: f.q, 'data-testid': 'threads-search', 'aria-label': 'Search threads' });
    const agentSel = h('select', { 'data-testid': 'threads-agent', 'aria-label': 'Agent' });
    const statusSel = h('select', { 'data-testid': 'threads-status', 'aria-label': 'Status' },
      h('option', { value: '' }, 'Any status'), h('option', { value: 'ok' }, 'OK'), h('option', { value: 'error' }, 'Error'));
    statusSel.value = f.status;
    const minMs = h('input', { type: 'number', min: 0, step: 'any', placeholder: 'Min ms', value: f.min_ms, 'data-testid': 'threads-min-ms', 'aria-label': 'Minimum duration in milliseconds' });
    const pauseBtn = h('button', { class: 'btn on', type: 'button', 'data-testid': 'threads-live', onclick: () => {
      paused = !paused;
      pauseBtn.classList.toggle('on', !paused);
      pauseBtn.textContent = paused ? 'Paused' : 'Live';
      if (!paused) load();
    } }, 'Live');
    const winSel = windowSelect('threads-window', [['', 'Any time'], [15, 'Last 15 min'], [60, 'Last hour'], [1440, 'Last 24 h'], [10080, 'Last 7 days']], f.minutes,
      (v) => { f.minutes = v; reload(); });
    const countNote = h('span', { class: 'count-note', 'data-testid': 'threads-count' });
    const tbody = h('tbody', { 'data-testid': 'threads-body' });
    const table = h('table', { class: 'data', 'data-testid': 'threads-table' },
      h('thead', null, h('tr', null, h('th', null, 'Thread'), h('th', null, 'Agent'), h('th', { class: 'hide-sm' }, 'Tenant'), h('th', null, 'Status'),
        h('th', { class: 'hide-sm' }, 'Started'), h('th', { class: 'num' }, 'Duration'), h('th', { class: 'num hide-sm' }, 'Spans'),
        h('th', { class: 'num hide-sm' }, 'LLM / tools'), h('th', { class: 'num hide-sm' }, 'Tokens'), h('th', { class: 'num hide-sm' }, 'Cost'))),
      tbody);
    const empty = h('div', { class: 'empty-state', hidden: true }, 'No threads match.');
    const el = h('div', { 'data-testid': 'page-threads' },
      h('div', { class: 'page-head' }, h('h1', null, 'Threads'), h('span', { class: 'sub' }, 'runs and conversations, newest first')),
      h('div', { class: 'filters' }, q, agentSel, statusSel, minMs, winSel, pauseBtn, countNote),
      h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, table), empty));
    threadsLists.forEach((fn) => { try { fn(el, tbody); } catch (_) { /* a view file's hook */ } });

    function fillAgents() {
      const cur = agentSel.value || f.agent;
      const list = [...agents].sort();
      if (f.agent && !agents.has(f.agent)) list.unshift(f.agent);
      agentSel.replaceChildren(h('option', { value: '' }, 'All agents'), ...list.map((a) => h('option', { value: a }, a)));
      agentSel.value = cur;
    }
    fillAgents();

    const matches = (t) => {
      if (f.agent && t.agent !== f.agent) return false;
      if (f.status && t.status !== f.status) return false;
      if (f.min_ms && num(t.duration_ms) < +f.min_ms) return false;
      if (f.minutes && nsToMs(t.start_ns) < Date.now() - f.minutes * 60000) return false;
      if (f.q) {
        const s = f.q.toLowerCase();
        if (![t.thread_id, t.agent, t.tenant].some((v) => String(v || '').toLowerCase().includes(s))) return false;
      }
      return true;
    };

    // Rows are keyed by thread id and patched in place, so live updates never pull a row out
    // from under the reader's pointer.
    const rowEls = new Map();
    function cellValues(t) {
      return [
        () => h('a', { href: '#/threads/' + encodeURIComponent(t.thread_id) }, t.thread_id),
        t.agent || '–',
        t.tenant || '–',
        () => [statusTag(t.status), t.live ? h('span', { class: 'tag', style: { marginLeft: '4px' }, title: 'updated live from the stream' }, 'live') : null],
        fmtDateTime(nsToMs(t.start_ns)),
        fmtMs(t.duration_ms),
        fmtInt(t.spans),
        fmtInt(t.llm_calls) + ' / ' + fmtInt(t.tool_calls),
        fmtCompact(num(t.input_tokens) + num(t.output_tokens)),
        fmtUsd(t.cost_usd),
      ];
    }
    const CELL_CLASS = ['mono ellipsis', 'nowrap', 'hide-sm', '', 'hide-sm', 'num', 'num hide-sm', 'num hide-sm', 'num hide-sm', 'num hide-sm'];
    function fillRow(tr, t) {
      tr.dataset.status = t.status;
      tr.dataset.durationMs = String(num(t.duration_ms));
      tr.thread = t;
      const vals = cellValues(t);
      const sig = [t.thread_id, '', '', t.status + (t.live ? 'L' : '')];
      vals.forEach((v, i) => {
        const td = tr.children[i];
        const key = typeof v === 'function' ? sig[i] : v;
        if (td.sig === key) return;
        td.sig = key;
        td.replaceChildren(...[].concat(typeof v === 'function' ? v() : v).filter(Boolean));
      });
      tr.children[0].title = t.thread_id;
      tr.children[4].title = new Date(nsToMs(t.start_ns)).toLocaleString();
    }
    function makeRow(t) {
      const tr = h('tr', { class: 'click', 'data-testid': 'thread-row', 'data-thread-id': t.thread_id, tabindex: 0 },
        CELL_CLASS.map((c) => h('td', { class: c || null })));
      const go = () => { location.hash = '#/threads/' + encodeURIComponent(tr.thread.thread_id); };
      tr.addEventListener('click', (e) => { if (e.target.tagName !== 'A') go(); });
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
      return tr;
    }
    function render() {
      const shown = rows.filter(matches).slice(0, 200);
      const want = shown.map((t) => {
        let tr = rowEls.get(t.thread_id);
        if (!tr) {
          tr = makeRow(t);
          rowEls.set(t.thread_id, tr);
          if (fresh.has(t.thread_id)) tr.classList.add('new');
        }
        fillRow(tr, t);
        return tr;
      });
      fresh.clear();
      const keep = new Set(want);
      for (const tr of [...tbody.children]) {
        if (!keep.has(tr)) { tr.remove(); rowEls.delete(tr.dataset.threadId); }
      }
      want.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
      empty.hidden = shown.length > 0;
      countNote.textContent = 'showing ' + fmtInt(shown.length) + ' of ' + fmtInt(Math.max(total, shown.length)) + (truncated ? '+' : '');
    }
    let seq = 0;
    async function load() {
      const my = ++seq;
      try {
        const d = await api('/api/threads', { q: f.q, agent: f.agent, status: f.status, min_ms: f.min_ms, minutes: f.minutes, limit: 200 });
        if (my !== seq) return;
        const got = (d.threads || []).slice();
        // Threads seen live but newer than the answer stay on top.
        const newest = got.reduce((m, t) => Math.max(m, num(t.start_ns)), 0);
        const ids = new Set(got.map((t) => t.thread_id));
        const liveOnly = rows.filter((t) => t.live && !ids.has(t.thread_id) && num(t.start_ns) > newest);
        rows = liveOnly.concat(got);
        total = Math.max(num(d.total), got.length) + liveOnly.length;
        truncated = !!d.truncated;
        byId.clear();
        for (const t of rows) { byId.set(t.thread_id, t); if (t.agent) agents.add(t.agent); }
        fillAgents();
        render();
        markLoaded('threads');
      } catch (e) {
        if (e.status !== 401) { empty.textContent = 'Could not load threads: ' + e.message; empty.hidden = false; }
      }
    }
    const fetchSoon = debounce(load, 250);
    const reload = () => {
      setHashParams('/threads', f);
      render();
      fetchSoon();
    };
    q.addEventListener('input', () => { f.q = q.value.trim(); reload(); });
    agentSel.addEventListener('change', () => { f.agent = agentSel.value; reload(); });
    statusSel.addEventListener('change', () => { f.status = statusSel.value; reload(); });
    minMs.addEventListener('input', () => { f.min_ms = minMs.value; reload(); });
    load();
    every(10000, () => { if (!paused) load(); });

    let dirty = false;
    return {
      title: 'Threads',
      el,
      onSpan(s) {
        if (paused || !s.thread_id) return;
        let t = byId.get(s.thread_id);
        const start = num(s.end_ns) - num(s.duration_ms) * 1e6;
        if (!t) {
          t = { thread_id: s.thread_id, tenant: s.tenant, agent: s.agent, status: 'ok', start_ns: start, end_ns: s.end_ns, duration_ms: 0,
            spans: 0, llm_calls: 0, tool_calls: 0, errors: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, live: true };
          byId.set(s.thread_id, t);
          rows.unshift(t);
          total++;
          fresh.add(s.thread_id);
          if (rows.length > 1000) { const gone = rows.pop(); byId.delete(gone.thread_id); }
        }
        t.start_ns = Math.min(num(t.start_ns) || start, start);
        t.end_ns = Math.max(num(t.end_ns), num(s.end_ns));
        t.duration_ms = (t.end_ns - t.start_ns) / 1e6;
        t.spans = num(t.spans) + 1;
        if (s.kind === 'llm_call') t.llm_calls = num(t.llm_calls) + 1;
        if (s.kind === 'tool_call') t.tool_calls = num(t.tool_calls) + 1;
        if (s.status === 'error') { t.errors = num(t.errors) + 1; t.status = 'error'; }
        t.input_tokens = num(t.input_tokens) + num(s.input_tokens);
        t.output_tokens = num(t.output_tokens) + num(s.output_tokens);
        t.cost_usd = num(t.cost_usd) + num(s.cost_usd);
        if (s.agent && !agents.has(s.agent)) { agents.add(s.agent); fillAgents(); }
        dirty = true;
      },
      onFrame() {
        if (dirty) { dirty = false; render(); }
      },
    };
  }

  // ---- Thread view ----
  function threadPage(id) {
    let data = null;
    let selected = null;
    const el = h('div', { 'data-testid': 'page-thread', 'data-thread-id': id }, h('div', { class: 'loading' }, 'Loading thread…'));
    async function load() {
      try {
        data = await api('/api/threads/' + encodeURIComponent(id), null, [400, 404]);
        // A running thread's permission lineage (root first), for the Permissions panel.
        data.lineage = data.live ? await api('/api/threads/' + encodeURIComponent(id) + '/permissions', null, [400, 404]).catch(() => null) : null;
        render();
        markLoaded('thread');
      } catch (e) {
        if (e.status === 404 || e.status === 400) {
          el.replaceChildren(h('div', { class: 'crumbs' }, h('a', { href: '#/threads' }, '← Threads')),
            h('div', { class: 'panel empty-state', 'data-testid': 'thread-missing' }, 'No thread ', h('code', null, id), ' (unknown, or not visible to this token).'));
        } else if (e.status !== 401) {
          el.replaceChildren(h('div', { class: 'panel empty-state' }, 'Could not load the thread: ' + e.message));
        }
      }
    }
    function tree(spans) {
      const ids = new Set(spans.map((s) => s.span_id));
      const kids = new Map();
      const roots = [];
      for (const s of spans) {
        if (s.parent_id && ids.has(s.parent_id) && s.parent_id !== s.span_id) {
          if (!kids.has(s.parent_id)) kids.set(s.parent_id, []);
          kids.get(s.parent_id).push(s);
        } else roots.push(s);
      }
      const byStart = (a, b) => num(a.start_ns) - num(b.start_ns);
      const out = [];
      const seen = new Set();
      const walk = (s, depth) => {
        if (seen.has(s.span_id)) return;
        seen.add(s.span_id);
        out.push([s, depth]);
        for (const c of (kids.get(s.span_id) || []).sort(byStart)) walk(c, depth + 1);
      };
      roots.sort(byStart).forEach((s) => walk(s, 0));
      return out;
    }
    function render() {
      const t = data.thread || {};
      const spans = data.spans || [];
      const logs = (data.logs || []).slice().sort((a, b) => num(a.ts_ns) - num(b.ts_ns));
      const perms = (data.permissions || []).slice().sort((a, b) => num(a.ts_ns) - num(b.ts_ns));
      const scores = (data.scores || []).slice().sort((a, b) => num(a.time_ms) - num(b.time_ms));
      const ordered = tree(spans);
      const spanNames = new Map(spans.map((s) => [s.span_id, s.name]));
      if (!selected || !spans.some((s) => s.span_id === selected)) {
        const firstErr = spans.find((s) => s.status === 'error');
        selected = firstErr ? firstErr.span_id : ordered.length ? ordered[0][0].span_id : null;
      }
      let t0 = Infinity, t1 = -Infinity;
      for (const s of spans) { t0 = Math.min(t0, num(s.start_ns)); t1 = Math.max(t1, num(s.end_ns)); }
      if (!spans.length) { t0 = num(t.start_ns); t1 = num(t.end_ns); }
      const total = Math.max(1, t1 - t0);
      const totalMs = total / 1e6;

      const ticks = h('div', { class: 'ticks' }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
        h('span', { class: 'tick' + (f === 0.25 || f === 0.75 ? ' minor' : ''), style: f === 1 ? { left: 'auto', right: '0', transform: 'none' } : { left: f * 100 + '%' } },
          f === 0 ? '0' : fmtMs(totalMs * f))));
      const rowsEl = ordered.map(([s, depth]) => {
        const left = ((num(s.start_ns) - t0) / total) * 100;
        const width = Math.max(0, ((num(s.end_ns) - num(s.start_ns)) / total) * 100);
        const bar = h('div', { class: 'wf-bar' + (s.status === 'error' ? ' error' : ''), 'data-testid': 'waterfall-bar', 'data-span-id': s.span_id,
          'data-duration-ms': num(s.duration_ms), 'data-kind': s.kind, 'data-status': s.status,
          style: { left: Math.min(left, 99.7) + '%', width: 'max(2px, ' + width + '%)' },
          title: `${s.name} · ${fmtMs(s.duration_ms)}` });
        return h('div', { class: 'wf-row ' + kindClass(s.kind) + (s.span_id === selected ? ' selected' : ''), 'data-testid': 'waterfall-row', 'data-span-id': s.span_id,
          role: 'button', tabindex: 0, onclick: () => select(s.span_id), onkeydown: (e) => { if (e.key === 'Enter') select(s.span_id); } },
          h('div', { class: 'wf-label', style: { paddingLeft: 12 + depth * 14 + 'px' }, title: `${s.name} (${s.kind})` },
            h('span', { class: 'kind-dot' }), h('span', { class: 'nm' }, s.name), s.status === 'error' ? h('span', { class: 'err', title: 'error' }, '!') : null),
          h('div', { class: 'wf-track' }, bar),
          h('div', { class: 'wf-dur' }, fmtMs(s.duration_ms)));
      });
      const kinds = [...new Set(spans.map((s) => s.kind))];

      const details = h('div', { class: 'panel details', 'data-testid': 'span-details' });
      const logsTable = logs.length ? h('div', { class: 'log-list' }, logs.map((l) => logRow(l, { t0Ms: t0 / 1e6, onSpan: select, spanNames }))) :
        h('div', { class: 'empty-state' }, 'No logs in this thread.');
      const permTable = perms.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data stack', 'data-testid': 'permissions-table' },
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Actor'), h('th', null, 'Action'), h('th', null, 'Resource'), h('th', null, 'Decision'), h('th', { class: 'hide-sm' }, 'Rule'))),
        h('tbody', null, perms.map((p) => h('tr', { 'data-testid': 'permission-row', 'data-decision': p.decision },
          h('td', { class: 'mono nowrap' }, '+' + fmtMs(nsToMs(p.ts_ns) - t0 / 1e6)), h('td', null, p.actor), h('td', { class: 'mono' }, p.action),
          h('td', { class: 'mono' }, p.resource), h('td', null, tag(p.decision, p.decision)), h('td', { class: 'hide-sm mono' }, p.rule || '–')))))) :
        h('div', { class: 'empty-state' }, 'No permission decisions in this thread.');
      const scoreTable = scores.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data stack', 'data-testid': 'scores-table' },
        h('thead', null, h('tr', null, h('th', null, 'Score'), h('th', { class: 'num' }, 'Value'), h('th', null, 'Label'), h('th', null, 'Source'), h('th', null, 'On'), h('th', { class: 'hide-sm' }, 'Comment'))),
        h('tbody', null, scores.map((s) => h('tr', { 'data-testid': 'score-row', 'data-score': s.name, 'data-value': num(s.value) },
          h('td', null, s.name), h('td', { class: 'num' }, String(s.value)), h('td', null, s.label || '–'), h('td', null, s.source || '–'),
          h('td', { class: 'mono' }, s.span_id && spanNames.has(s.span_id) ? h('span', { role: 'button', tabindex: 0, 'data-testid': 'score-span', onclick: () => select(s.span_id), onkeydown: (e) => { if (e.key === 'Enter') select(s.span_id); } }, spanNames.get(s.span_id)) : 'thread'),
          h('td', { class: 'hide-sm' }, s.comment || '–')))))) :
        h('div', { class: 'empty-state' }, 'No scores for this thread.');

      el.replaceChildren(
        h('div', { class: 'crumbs' }, h('a', { href: '#/threads', 'data-testid': 'back-to-threads' }, '← Threads')),
        h('div', { class: 'thread-head' }, h('h1', { 'data-testid': 'thread-id' }, t.thread_id || id), statusTag(t.status)),
        h('div', { class: 'kv-strip', 'data-testid': 'thread-summary' },
          kv('Agent', t.agent || '–'), kv('Tenant', t.tenant || '–'), kv('Started', fmtDateTime(nsToMs(t.start_ns))),
          kv('Duration', fmtMs(t.duration_ms)), kv('Spans', fmtInt(t.spans || spans.length)), kv('LLM / tools', fmtInt(t.llm_calls) + ' / ' + fmtInt(t.tool_calls)),
          kv('Tokens', fmtInt(t.input_tokens) + ' in · ' + fmtInt(t.output_tokens) + ' out'), kv('Cost', fmtUsd(t.cost_usd)), kv('Errors', fmtInt(t.errors))),
        controlPanel(),
        lineagePanel(),
        h('div', { class: 'thread-layout' },
          h('div', { class: 'panel waterfall', 'data-testid': 'waterfall' },
            num(data.spans_total) > spans.length ? h('div', { class: 'banner info', style: { margin: '8px' } },
              'Showing the first ' + fmtInt(spans.length) + ' of ' + fmtInt(data.spans_total) + ' spans.') : null,
            h('div', { class: 'wf-axis' }, h('div', { class: 'wf-label', style: { color: 'var(--muted)', fontSize: '11.5px' } }, 'Span'), ticks, h('div')),
            rowsEl.length ? rowsEl : h('div', { class: 'empty-state' }, 'No spans recorded in this thread.'),
            h('div', { class: 'panel-body kind-legend', style: { paddingTop: '12px' } }, kinds.map((k) =>
              h('span', { class: kindClass(k) }, h('span', { class: 'kind-dot' }), KIND_LABEL[k] || k)),
              h('span', null, h('span', { class: 'kind-dot', style: { background: 'var(--err)' } }), 'error'))),
          details),
        h('div', { class: 'grid cols-2', style: { marginTop: '16px' } },
          h('div', { class: 'panel', 'data-testid': 'thread-logs' }, h('div', { class: 'panel-head' }, h('h2', null, 'Logs'), h('span', { class: 'hint' }, fmtInt(logs.length))), h('div', { class: 'panel-body flush' }, logsTable)),
          h('div', { class: 'panel', 'data-testid': 'thread-permissions' }, h('div', { class: 'panel-head' }, h('h2', null, 'Permission decisions'), h('span', { class: 'hint' }, fmtInt(perms.length))), h('div', { class: 'panel-body flush' }, permTable))),
        h('div', { class: 'panel', 'data-testid': 'thread-scores', style: { marginTop: '16px' } }, h('div', { class: 'panel-head' }, h('h2', null, 'Scores and feedback'), h('span', { class: 'hint' }, fmtInt(scores.length))), h('div', { class: 'panel-body flush' }, scoreTable)),
        // Panels the view files add (flamegraph, replay, ...), in registration order.
        ...threadPanels.map((panel) => {
          try { return panel(data, { id, select, reload: load, spans: ordered }); } catch (e) { return h('div', { class: 'panel empty-state' }, 'A panel failed: ' + e.message); }
        }).filter(Boolean));
      renderDetails(details, t0);
    }
    function kv(label, value) { return h('div', null, h('span', null, label), h('b', null, value)); }
    // Permissions: what each level of a running thread's lineage allows (a child holds only
    // the intersection), and its escalations among the recent decisions.
    function lineagePanel() {
      const x = data.lineage && data.lineage.explanation;
      if (!x || !x.chain.some((l) => l.permissions)) return null;
      const escalations = (data.lineage.recent || []).filter((d) => d.escalation);
      return h('div', { class: 'panel', 'data-testid': 'thread-lineage', style: { marginBottom: '16px' } },
        h('div', { class: 'panel-head' }, h('h2', null, 'Permissions'), h('span', { class: 'hint' }, fmtInt(escalations.length) + ' escalation(s)')),
        h('div', { class: 'panel-body flush' }, h('div', { class: 'table-wrap' }, h('table', { class: 'data stack', 'data-testid': 'lineage-table' },
          h('thead', null, h('tr', null, h('th', null, 'Depth'), h('th', null, 'Thread'), h('th', null, 'Agent'), h('th', null, 'Allows'))),
          h('tbody', null, x.chain.map((l) => h('tr', { 'data-testid': 'lineage-row', 'data-depth': l.depth },
            h('td', { class: 'num' }, String(l.depth)),
            h('td', { class: 'mono' }, l.thread_id === id ? shortId(l.thread_id) : h('a', { href: '#/threads/' + encodeURIComponent(l.thread_id) }, shortId(l.thread_id))),
            h('td', null, l.agent),
            h('td', { class: 'mono' }, l.permissions ? (l.permissions.name ? l.permissions.name + ': ' : '') + l.permissions.allow.join(', ') : 'inherits')))))),
          escalations.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data stack', 'data-testid': 'escalations-table' },
            h('thead', null, h('tr', null, h('th', null, 'Action'), h('th', null, 'Resource'), h('th', null, 'Severity'), h('th', null, 'Narrowed by'))),
            h('tbody', null, escalations.map((d) => h('tr', { 'data-testid': 'escalation-row', 'data-severity': d.escalation },
              h('td', { class: 'mono' }, d.action), h('td', { class: 'mono' }, d.resource), h('td', null, tag(d.escalation, d.escalation)),
              h('td', { class: 'mono' }, (d.narrowed_by ? shortId(d.narrowed_by) : '–') + ' @ depth ' + (d.ancestor_depth || '?'))))))) : null));
    }
    // The thread's place in its tree (parent, child threads), its state and budget use while it
    // runs, and — for an operator, while it runs here — pause, resume and cancel.
    function controlPanel() {
      const tree = data.tree || {};
      const live = data.live || null;
      const children = tree.children || [];
      if (!tree.parent_thread_id && !children.length && !live && !tree.state) return null;
      const link = (tid) => h('a', { href: '#/threads/' + encodeURIComponent(tid), 'data-testid': 'tree-link', 'data-thread-id': tid }, shortId(tid));
      const state = live ? live.state : tree.state || 'ended';
      const buttons = [];
      if (data.can_control && live) {
        const act = (command) => async () => {
          const reason = command === 'resume' ? '' : (window.prompt('Why? (kept in the audit trail)', '') || '');
          try {
            await apiPost('/api/threads/' + encodeURIComponent(id) + '/control', { command, reason });
            await load();
          } catch (e) {
            showBanner('Could not ' + command + ' the thread: ' + e.message, 'api');
          }
        };
        if (live.state === 'running') buttons.push(h('button', { class: 'btn', 'data-testid': 'thread-pause', onclick: act('pause') }, 'Pause'));
        if (live.state === 'paused') buttons.push(h('button', { class: 'btn', 'data-testid': 'thread-resume', onclick: act('resume') }, 'Resume'));
        if (live.state !== 'cancelled') buttons.push(h('button', { class: 'btn danger', 'data-testid': 'thread-cancel', onclick: act('cancel') }, 'Cancel'));
      }
      return h('div', { class: 'panel', 'data-testid': 'thread-control', style: { marginBottom: '16px' } },
        h('div', { class: 'panel-head' }, h('h2', null, 'Thread tree and control'), h('span', { class: 'hint', 'data-testid': 'thread-state', 'data-state': state }, state), h('span', { class: 'spacer' }), buttons),
        h('div', { class: 'panel-body' },
          h('div', { class: 'kv-strip' },
            kv('Parent', tree.parent_thread_id ? link(tree.parent_thread_id) : '–'),
            live ? kv('Used', fmtInt(live.used.turns) + ' turns · ' + fmtInt(live.used.tokens) + ' tokens · ' + fmtUsd(live.used.cost_usd)) : null,
            live && live.budget ? kv('Budget', Object.entries(live.budget).filter(([k]) => k !== 'hard' && k !== 'warn_share').map(([k, v]) => k + ' ' + v).join(' · ') + (live.budget.hard ? ' (hard)' : '')) : null,
            (live && live.state_by) || tree.state_by ? kv('State set by', (live && live.state_by) || tree.state_by) : null),
          children.length ? h('div', { 'data-testid': 'thread-children', style: { marginTop: '8px' } }, h('span', { class: 'hint' }, 'Child threads: '),
            children.map((c, i) => h('span', null, i ? ', ' : '', link(c))), tree.children_truncated ? ' …' : '') : null));
    }
    function renderDetails(box, t0) {
      const s = (data.spans || []).find((x) => x.span_id === selected);
      if (!s) { box.replaceChildren(h('div', { class: 'empty-state' }, 'Select a span.')); return; }
      const attrs = Object.entries(s.attributes || {});
      const spanLogs = (data.logs || []).filter((l) => l.span_id === s.span_id);
      box.dataset.spanId = s.span_id;
      box.replaceChildren(
        h('div', { class: 'panel-head' }, h('span', { class: 'kind-dot ' + kindClass(s.kind) }), h('h2', { style: { wordBreak: 'break-word' } }, s.name), h('div', { class: 'right' }, statusTag(s.status))),
        h('div', { class: 'panel-body' },
          h('dl', null,
            h('dt', null, 'Kind'), h('dd', null, KIND_LABEL[s.kind] || s.kind),
            h('dt', null, 'Duration'), h('dd', { 'data-testid': 'span-duration' }, fmtMs(s.duration_ms)),
            h('dt', null, 'Starts at'), h('dd', null, '+' + fmtMs((num(s.start_ns) - t0) / 1e6)),
            s.model ? [h('dt', null, 'Model'), h('dd', { class: 'mono' }, s.model)] : null,
            (num(s.input_tokens) || num(s.output_tokens)) ? [h('dt', null, 'Tokens'), h('dd', { 'data-testid': 'span-tokens' }, fmtInt(s.input_tokens) + ' in · ' + fmtInt(s.output_tokens) + ' out')] : null,
            num(s.cost_usd) ? [h('dt', null, 'Cost'), h('dd', { 'data-testid': 'span-cost' }, fmtUsd(s.cost_usd))] : null,
            h('dt', null, 'Span id'), h('dd', { class: 'mono' }, s.span_id),
            s.parent_id ? [h('dt', null, 'Parent'), h('dd', { class: 'mono' }, s.parent_id)] : null),
          s.error ? h('div', { class: 'err-box', 'data-testid': 'span-error' }, s.error) : null,
          h('h3', null, 'Attributes'),
          attrs.length ? h('table', { class: 'attrs', 'data-testid': 'span-attributes' }, h('tbody', null, attrs.map(([k, v]) =>
            h('tr', null, h('td', null, k), h('td', null, typeof v === 'object' ? JSON.stringify(v) : String(v)))))) :
            h('div', { class: 'hint', style: { color: 'var(--muted)', fontSize: '12.5px' } }, 'None.'),
          spanLogs.length ? [h('h3', null, 'Logs in this span'), h('div', { class: 'log-list', style: { margin: '0 -16px' } }, spanLogs.map((l) => logRow(l, { t0Ms: t0 / 1e6 })))] : null));
    }
    function select(spanId) {
      selected = spanId;
      el.querySelectorAll('.wf-row').forEach((r) => r.classList.toggle('selected', r.dataset.spanId === spanId));
      const box = el.querySelector('[data-testid="span-details"]');
      let t0 = Infinity;
      for (const s of data.spans || []) t0 = Math.min(t0, num(s.start_ns));
      if (box) renderDetails(box, t0);
    }
    load();
    let refetch = null;
    const soon = () => { if (!refetch) refetch = setTimeout(() => { refetch = null; load(); }, 400); };
    return {
      title: 'Thread ' + id,
      el,
      onSpan(s) { if (s.thread_id === id) soon(); },
      onLog(l) { if (l.thread_id === id) soon(); },
      onPermission(p) { if (p.thread_id === id) soon(); },
      destroy() { clearTimeout(refetch); },
    };
  }

  function logRow(l, opts) {
    opts = opts || {};
    const lvl = String(l.level || 'info').toLowerCase().replace('warning', 'warn');
    const ms = nsToMs(l.ts_ns);
    const ts = opts.t0Ms !== undefined ? '+' + fmtMs(ms - opts.t0Ms) : [fmtClock(ms), h('span', { class: 'ms' }, fmtClock(ms, true).slice(8))];
    const who = [l.agent, l.tenant].filter(Boolean).join(' · ');
    const msg = h('span', { class: 'msg' }, l.message);
    if (opts.withThread && l.thread_id) msg.appendChild(h('a', { href: '#/threads/' + encodeURIComponent(l.thread_id), title: 'Open thread ' + l.thread_id }, 'thread ' + shortId(l.thread_id)));
    if (opts.onSpan && l.span_id) msg.appendChild(h('button', { type: 'button', class: 'linklike', title: 'Show this span', onclick: () => opts.onSpan(l.span_id) }, 'span'));
    return h('div', { class: 'log-row lv-' + lvl + (opts.fresh ? ' new' : ''), 'data-testid': 'log-row', 'data-level': lvl, 'data-agent': l.agent || '' },
      h('span', { class: 'ts', title: new Date(ms).toISOString() }, ts),
      h('span', { class: 'lvl lvl-' + lvl }, lvl),
      opts.t0Ms !== undefined
        ? h('span', { class: 'who', title: l.span_id || '' }, (opts.spanNames && opts.spanNames.get(l.span_id)) || (l.span_id ? l.span_id : ''))
        : h('span', { class: 'who', title: who }, l.agent || '–'),
      msg);
  }

  // ---- Anomalies and alerts ----
  function anomaliesPage() {
    let anomalies = [], alerts = [];
    let minutes = windowParam(1440);
    const timeline = makeChart('anomaly-timeline');
    const anomBody = h('div', { class: 'table-wrap' });
    const alertBody = h('div', { class: 'table-wrap' });
    const winSel = windowSelect('anomalies-window', [[60, 'Last hour'], [360, 'Last 6 h'], [1440, 'Last 24 h'], [10080, 'Last 7 days']], minutes,
      (v) => { minutes = +v; setHashParams('/anomalies', { minutes: minutes === 1440 ? '' : minutes }); load(); });
    const counts = h('span', { class: 'sub' });
    const el = h('div', { 'data-testid': 'page-anomalies' },
      h('div', { class: 'page-head' }, h('h1', null, 'Anomalies & alerts'), counts, h('span', { class: 'spacer' }), h('div', { class: 'filters', style: { margin: 0 } }, winSel)),
      h('div', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, 'Timeline'), h('span', { class: 'hint' }, 'anomaly score; alert firings below'),
        h('div', { class: 'right legend' },
          h('span', null, h('span', { class: 'sw', style: { background: 'var(--err)', height: '8px', width: '8px', borderRadius: '50%' } }), 'higher than expected'),
          h('span', null, h('span', { class: 'sw', style: { background: 'var(--c2)', height: '8px', width: '8px', borderRadius: '50%' } }), 'lower'),
          h('span', null, h('span', { class: 'sw', style: { background: 'var(--warn)', height: '8px', width: '3px' } }), 'alert firing'),
          h('span', null, h('span', { class: 'sw', style: { background: 'var(--ok)', height: '8px', width: '3px' } }), 'resolved'))),
        h('div', { class: 'panel-body' }, timeline)),
      h('div', { class: 'section-title' }, 'Anomalies'),
      h('div', { class: 'panel' }, anomBody),
      h('div', { class: 'section-title' }, 'Directive alerts'),
      h('div', { class: 'panel' }, alertBody));

    function drawTimeline() {
      const svg = timeline.svg;
      const W = Math.max(200, svg.clientWidth || 600), H = Math.max(100, svg.clientHeight || 180);
      const now = Date.now();
      // The window, narrowed to where the data is (at least 10 minutes).
      let first = now;
      for (const a of anomalies.concat(alerts)) first = Math.min(first, nsToMs(a.ts_ns) || now);
      const t0 = Math.max(now - minutes * 60000, Math.min(now - 600000, first - Math.max(60000, (now - first) * 0.08)));
      const L = 34, R = 12, T = 10, B = 20, lane = 18;
      const x = (t) => L + ((t - t0) / (now - t0)) * (W - L - R);
      const yMax = H - B - lane - 6;
      const y = (v) => T + (1 - Math.max(0, Math.min(1, v))) * (yMax - T);
      const out = [];
      for (const v of [0, 0.25, 0.5, 0.75, 1]) {
        const yy = Math.round(y(v)) + 0.5;
        out.push(`<line class="gridline" x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}"/><text x="${L - 6}" y="${yy + 3.5}" text-anchor="end">${v}</text>`);
      }
      const span = now - t0;
      const tStep = TIME_STEPS.find((s) => span / s <= Math.max(2, Math.floor((W - L - R) / 75))) || 86400000;
      const tz = new Date().getTimezoneOffset() * 60000;
      for (let t = Math.ceil((t0 - tz) / tStep) * tStep + tz; t <= now; t += tStep) {
        const xx = x(t);
        if (xx < L + 14 || xx > W - R - 14) continue;
        const label = tStep >= 86400000 ? new Date(t).toLocaleDateString('en-US', { month: 'short', day: 'numeric' }) : fmtClock(t).slice(0, 5);
        out.push(`<line class="gridline" x1="${xx}" x2="${xx}" y1="${T}" y2="${H - B}"/><text x="${xx}" y="${H - 5}" text-anchor="middle">${label}</text>`);
      }
      const laneY = H - B - lane;
      out.push(`<rect x="${L}" y="${laneY}" width="${W - L - R}" height="${lane - 2}" rx="3" style="fill:var(--panel-2)"/>`);
      out.push(`<line class="axis" x1="${L}" x2="${W - R}" y1="${Math.round(y(0)) + 0.5}" y2="${Math.round(y(0)) + 0.5}"/>`);
      let n = 0;
      for (const a of alerts) {
        const t = nsToMs(a.ts_ns);
        if (t < t0) continue;
        const color = a.state === 'resolved' ? 'var(--ok)' : 'var(--warn)';
        out.push(`<rect data-testid="timeline-alert" x="${x(t) - 1.5}" y="${laneY + 2}" width="3" height="${lane - 6}" rx="1" style="fill:${color}"><title>${escXml(fmtDateTime(t) + ' · ' + a.directive + ' ' + a.state + (a.message ? ': ' + a.message : ''))}</title></rect>`);
      }
      for (const a of anomalies) {
        const t = nsToMs(a.ts_ns);
        if (t < t0) continue;
        n++;
        const color = a.direction === 'down' ? 'var(--c2)' : 'var(--err)';
        const r = 3 + 3 * Math.max(0, Math.min(1, num(a.cause_contribution)));
        out.push(`<circle data-testid="timeline-anomaly" cx="${x(t).toFixed(1)}" cy="${y(num(a.score)).toFixed(1)}" r="${r.toFixed(1)}" style="fill:${color};fill-opacity:.75;stroke:var(--panel);stroke-width:1"><title>${escXml(fmtDateTime(t) + ' · ' + (a.operation || '') + ' ' + (a.metric || '') + ' score ' + num(a.score).toFixed(2) + (a.cause ? ' · cause ' + a.cause : ''))}</title></circle>`);
      }
      if (!n && !alerts.length) out.push(`<text class="empty" x="${(W + L) / 2}" y="${(T + yMax) / 2}" text-anchor="middle">No anomalies or alerts in this window</text>`);
      svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
      svg.setAttribute('data-version', String(+svg.getAttribute('data-version') + 1));
      svg.setAttribute('data-points', String(n));
      svg.innerHTML = out.join('');
    }
    function renderTables() {
      counts.textContent = fmtInt(anomalies.length) + ' anomalies · ' + fmtInt(alerts.filter((a) => a.state === 'firing').length) + ' firings';
      anomBody.replaceChildren(anomalies.length ? h('table', { class: 'data stack', 'data-testid': 'anomalies-table' },
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Operation'), h('th', { class: 'hide-sm' }, 'Metric'), h('th', null, 'Score'),
          h('th', { class: 'hide-sm' }, 'Direction'), h('th', null, 'Top cause'), h('th', { class: 'hide-sm' }, 'Summary'))),
        h('tbody', null, anomalies.slice(0, 300).map((a) => h('tr', { 'data-testid': 'anomaly-row', 'data-score': num(a.score) },
          h('td', { style: { whiteSpace: 'nowrap' } }, fmtDateTime(nsToMs(a.ts_ns))),
          h('td', null, h('div', { style: { fontWeight: 600 } }, a.operation || '–'), h('div', { style: { color: 'var(--muted)', fontSize: '12px' } }, [a.agent, a.tenant].filter(Boolean).join(' · '))),
          h('td', { class: 'hide-sm' }, a.metric || '–', typeof a.value === 'number' && typeof a.expected === 'number'
            ? h('div', { style: { color: 'var(--muted)', fontSize: '12px', whiteSpace: 'nowrap' } }, fmtCompact(a.value) + ' vs ' + fmtCompact(a.expected) + ' expected') : null),
          h('td', { style: { whiteSpace: 'nowrap' } }, h('span', { class: 'score-bar' + (num(a.score) >= 0.9 ? ' hi' : '') }, h('i', { style: { width: Math.round(Math.min(1, num(a.score)) * 100) + '%' } })), num(a.score).toFixed(2)),
          h('td', { class: 'hide-sm' }, h('span', { class: a.direction === 'down' ? 'dir-down' : 'dir-up' }, a.direction === 'down' ? '↓ ' : '↑ '), a.direction || ''),
          h('td', null, a.cause ? h('code', null, a.cause) : '–', a.cause_contribution !== undefined && a.cause_contribution !== null ? h('div', { style: { color: 'var(--muted)', fontSize: '12px' }, title: 'contribution of this cause to the shift' }, 'contribution ' + num(a.cause_contribution).toFixed(2)) : null),
          h('td', { class: 'hide-sm' }, a.summary || '', a.thread_id ? h('div', null, h('a', { href: '#/threads/' + encodeURIComponent(a.thread_id), title: a.thread_id }, 'thread ' + shortId(a.thread_id))) : null)))))
        : h('div', { class: 'empty-state' }, 'No anomalies in this window. The streaming detectors flag latency, error, token and cost shifts here.'));
      alertBody.replaceChildren(alerts.length ? h('table', { class: 'data stack', 'data-testid': 'alerts-table' },
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Directive'), h('th', null, 'State'), h('th', { class: 'hide-sm' }, 'Severity'), h('th', null, 'Message'), h('th', { class: 'hide-sm' }, 'Tenant'))),
        h('tbody', null, alerts.slice(0, 300).map((a) => h('tr', { 'data-testid': 'alert-row', 'data-state': a.state },
          h('td', { style: { whiteSpace: 'nowrap' } }, fmtDateTime(nsToMs(a.ts_ns))),
          h('td', { class: 'mono' }, a.directive),
          h('td', null, tag(a.state, a.state)),
          h('td', { class: 'hide-sm' }, tag(a.severity || '–', /crit|error/.test(a.severity) ? 'error' : /warn/.test(a.severity) ? 'warn' : '')),
          h('td', null, a.message || '–'),
          h('td', { class: 'hide-sm' }, a.tenant || '–')))))
        : h('div', { class: 'empty-state' }, 'No directive alerts in this window.'));
    }
    async function load() {
      try {
        const d = await api('/api/anomalies', { minutes });
        const byTime = (a, b) => num(b.ts_ns) - num(a.ts_ns);
        anomalies = (d.anomalies || []).slice().sort(byTime);
        alerts = (d.alerts || []).slice().sort(byTime);
        renderTables();
        drawTimeline();
        markLoaded('anomalies');
      } catch (e) {
        if (e.status !== 401) anomBody.replaceChildren(h('div', { class: 'empty-state' }, 'Could not load anomalies: ' + e.message));
      }
    }
    load();
    every(15000, load);
    every(30000, drawTimeline);
    let dirty = false;
    return {
      title: 'Anomalies',
      el,
      onAnomaly(a) { anomalies.unshift(a); dirty = true; scheduleFrame(); },
      onAlert(a) { alerts.unshift(a); dirty = true; scheduleFrame(); },
      onFrame() { if (dirty) { dirty = false; renderTables(); drawTimeline(); } },
      resize: drawTimeline,
    };
  }

  // ---- Logs ----
  function logsPage() {
    const params = new URLSearchParams((location.hash.split('?')[1]) || '');
    const f = { level: params.get('level') || 'trace', agent: params.get('agent') || '', q: params.get('q') || '' };
    let logs = [];          // newest first
    let paused = false;
    let queued = [];
    const agents = new Set(live.agents);
    const list = h('div', { class: 'log-list', 'data-testid': 'log-list' });
    const empty = h('div', { class: 'empty-state', hidden: true }, 'No log lines match.');
    const levelSel = h('select', { 'data-testid': 'logs-level', 'aria-label': 'Minimum level' },
      LEVELS.map((l) => h('option', { value: l }, l === 'trace' ? 'All levels' : l + ' and above')));
    levelSel.value = f.level;
    const agentSel = h('select', { 'data-testid': 'logs-agent', 'aria-label': 'Agent' });
    const q = h('input', { type: 'search', placeholder: 'Filter text', value: f.q, 'data-testid': 'logs-search', 'aria-label': 'Filter log text' });
    const countNote = h('span', { class: 'count-note', 'data-testid': 'logs-count' });
    const pauseBtn = h('button', { class: 'btn on', type: 'button', 'data-testid': 'logs-live', onclick: () => {
      paused = !paused;
      pauseBtn.classList.toggle('on', !paused);
      pauseBtn.textContent = paused ? 'Paused' : 'Live tail';
      if (!paused && queued.length) { add(queued); queued = []; }
    } }, 'Live tail');
    const el = h('div', { 'data-testid': 'page-logs' },
      h('div', { class: 'page-head' }, h('h1', null, 'Logs'), h('span', { class: 'sub' }, 'live tail, newest first')),
      h('div', { class: 'filters' }, q, levelSel, agentSel, pauseBtn, countNote),
      h('div', { class: 'panel' }, list, empty));
    function fillAgents() {
      const cur = agentSel.value || f.agent;
      const names = [...agents].sort();
      if (f.agent && !agents.has(f.agent)) names.unshift(f.agent);
      agentSel.replaceChildren(h('option', { value: '' }, 'All agents'), ...names.map((a) => h('option', { value: a }, a)));
      agentSel.value = cur;
    }
    fillAgents();
    const matches = (l) => {
      if (levelRank(l.level) < levelRank(f.level)) return false;
      if (f.agent && l.agent !== f.agent) return false;
      if (f.q) {
        const s = f.q.toLowerCase();
        if (![l.message, l.agent, l.thread_id].some((v) => String(v || '').toLowerCase().includes(s))) return false;
      }
      return true;
    };
    function render() {
      const shown = logs.filter(matches).slice(0, 1000);
      list.replaceChildren(...shown.map((l) => logRow(l, { withThread: true })));
      empty.hidden = shown.length > 0;
      countNote.textContent = fmtInt(shown.length) + ' lines';
    }
    function add(batch) {
      const ok = batch.filter(matches);
      logs = batch.slice().reverse().concat(logs).slice(0, 2000);
      if (!ok.length) return;
      const frag = document.createDocumentFragment();
      for (let i = ok.length - 1; i >= 0; i--) frag.appendChild(logRow(ok[i], { withThread: true, fresh: true }));
      list.insertBefore(frag, list.firstChild);
      while (list.childElementCount > 1000) list.lastChild.remove();
      empty.hidden = true;
      countNote.textContent = fmtInt(list.childElementCount) + ' lines';
    }
    let seq = 0;
    async function load() {
      const my = ++seq;
      try {
        const d = await api('/api/logs', { level: f.level, agent: f.agent, q: f.q, minutes: 60, limit: 500 });
        if (my !== seq) return;
        const got = (d.logs || []).slice().sort((a, b) => num(b.ts_ns) - num(a.ts_ns));
        // Keep live lines newer than the fetched ones (they may not be in the answer yet).
        const newest = got.length ? num(got[0].ts_ns) : 0;
        const keep = logs.filter((l) => num(l.ts_ns) > newest && matches(l));
        logs = keep.concat(got);
        for (const l of got) if (l.agent) agents.add(l.agent);
        fillAgents();
        render();
        markLoaded('logs');
      } catch (e) {
        if (e.status !== 401) { empty.textContent = 'Could not load logs: ' + e.message; empty.hidden = false; }
      }
    }
    const reload = debounce(load, 250);
    // Filters apply at once to what is on screen (and to the URL), then the server is asked.
    const changed = () => {
      const p = new URLSearchParams();
      if (f.level !== 'trace') p.set('level', f.level);
      if (f.agent) p.set('agent', f.agent);
      if (f.q) p.set('q', f.q);
      const qs = p.toString();
      history.replaceState(null, '', '#/logs' + (qs ? '?' + qs : ''));
      render();
      reload();
    };
    levelSel.addEventListener('change', () => { f.level = levelSel.value; changed(); });
    agentSel.addEventListener('change', () => { f.agent = agentSel.value; changed(); });
    q.addEventListener('input', () => { f.q = q.value.trim(); changed(); });
    load();
    let batch = [];
    return {
      title: 'Logs',
      el,
      onLog(l) {
        if (l.agent && !agents.has(l.agent)) { agents.add(l.agent); fillAgents(); }
        if (paused) { queued.push(l); if (queued.length > 2000) queued.shift(); return; }
        batch.push(l);
        scheduleFrame();
      },
      onFrame() {
        if (batch.length) { const b = batch; batch = []; add(b); }
      },
    };
  }

  // ---- Control: approvals, directives run by hand, the run history ----
  function controlPage() {
    let data = { live: null, directives: [], approvals: [], runs: [], incidents: [] };
    const incidentsBox = h('div', { class: 'table-wrap' });
    const approvalsBox = h('div', { class: 'table-wrap' });
    const directivesBox = h('div', { class: 'table-wrap' });
    const runsBox = h('div', { class: 'table-wrap' });
    const counts = h('span', { class: 'sub' });
    const el = h('div', { 'data-testid': 'page-control' },
      h('div', { class: 'page-head' }, h('h1', null, 'Control'), counts),
      h('div', { class: 'section-title' }, 'Approvals'),
      h('div', { class: 'panel' }, approvalsBox),
      h('div', { class: 'section-title' }, 'Incidents'),
      h('div', { class: 'panel' }, incidentsBox),
      h('div', { class: 'section-title' }, 'Directives'),
      h('div', { class: 'panel' }, directivesBox),
      h('div', { class: 'section-title' }, 'Runs'),
      h('div', { class: 'panel' }, runsBox));
    async function act(path, body, what) {
      try {
        await apiPost(path, body);
        await load();
      } catch (e) {
        showBanner('Could not ' + what + ': ' + e.message, 'api');
      }
    }
    function deadline(a) {
      const left = nsToMs(a.deadline) - Date.now();
      if (a.state !== 'pending') return a.decided_by ? 'by ' + a.decided_by : '–';
      return left > 0 ? 'in ' + fmtMs(left) : 'now';
    }
    function render() {
      const pending = data.approvals.filter((a) => a.state === 'pending').length;
      counts.textContent = fmtInt(pending) + ' pending · ' + fmtInt(data.runs.length) + ' runs';
      if (!data.live) {
        const none = h('div', { class: 'empty-state' }, 'Directives run inside an agent; this dashboard reads a store on disk.');
        approvalsBox.replaceChildren(none);
        incidentsBox.replaceChildren();
        directivesBox.replaceChildren();
        runsBox.replaceChildren();
        return;
      }
      approvalsBox.replaceChildren(data.approvals.length ? h('table', { class: 'data stack', 'data-testid': 'approvals-table' },
        h('thead', null, h('tr', null, h('th', null, 'Id'), h('th', null, 'Directive'), h('th', null, 'Proposes'), h('th', null, 'Reason'),
          h('th', { class: 'hide-sm' }, 'Confidence'), h('th', null, 'State'), h('th', null, 'Deadline'), h('th', null, ''))),
        h('tbody', null, data.approvals.map((a) => h('tr', { 'data-testid': 'approval-row', 'data-id': a.id, 'data-state': a.state },
          h('td', { class: 'mono' }, String(a.id)),
          h('td', { class: 'mono' }, a.directive),
          h('td', null, (a.actions || []).join(', ')),
          h('td', null, a.reason || '', a.thread_id ? h('div', null, h('a', { href: '#/threads/' + encodeURIComponent(a.thread_id) }, 'thread ' + shortId(a.thread_id))) : null),
          h('td', { class: 'hide-sm' }, typeof a.confidence === 'number' ? a.confidence.toFixed(2) : '–'),
          h('td', null, tag(a.state, a.state === 'pending' ? 'warn' : a.state === 'approved' ? 'ok' : '', 'approval-state')),
          h('td', { style: { whiteSpace: 'nowrap' } }, deadline(a)),
          h('td', { style: { whiteSpace: 'nowrap' } }, data.can_control && a.state === 'pending' ? [
            h('button', { class: 'btn', 'data-testid': 'approve', onclick: () => act('/api/approvals/' + a.id, { decision: 'approve', note: window.prompt('Note (kept in the audit trail)', '') || '' }, 'approve') }, 'Approve'),
            ' ',
            h('button', { class: 'btn danger', 'data-testid': 'reject', onclick: () => act('/api/approvals/' + a.id, { decision: 'reject', note: window.prompt('Why? (kept in the audit trail)', '') || '' }, 'reject') }, 'Reject'),
          ] : null)))))
        : h('div', { class: 'empty-state' }, 'No remedies wait for approval. A directive with approve = { within = "15m" } holds its remedies here.'));
      incidentsBox.replaceChildren(data.incidents.length ? h('table', { class: 'data stack', 'data-testid': 'incidents-table' },
        h('thead', null, h('tr', null, h('th', null, 'Opened'), h('th', null, 'Cause'), h('th', null, 'State'), h('th', null, 'Members'), h('th', null, 'Resolution'), h('th', { class: 'hide-sm' }, 'Narrative'))),
        h('tbody', null, data.incidents.map((i) => h('tr', { 'data-testid': 'incident-row', 'data-id': i.id, 'data-state': i.state },
          h('td', { style: { whiteSpace: 'nowrap' } }, fmtDateTime(nsToMs(i.opened))),
          h('td', { class: 'mono' }, i.cause),
          h('td', null, tag(i.state, i.state === 'open' ? 'warn' : 'ok')),
          h('td', { title: (i.members || []).map((m) => m.kind + ': ' + m.summary).join('\n') }, (i.members || []).map((m) => m.kind).join(', ')),
          h('td', null, i.resolution || '–'),
          h('td', { class: 'hide-sm' }, i.narrative || '–')))))
        : h('div', { class: 'empty-state' }, 'No incidents: anomalies and firings on one cause gather here.'));
      directivesBox.replaceChildren(data.directives.length ? h('table', { class: 'data stack', 'data-testid': 'directives-table' },
        h('thead', null, h('tr', null, h('th', null, 'Directive'), h('th', null, 'When'), h('th', null, 'State'), h('th', null, ''))),
        h('tbody', null, data.directives.map((d) => h('tr', { 'data-testid': 'directive-row', 'data-name': d.name },
          h('td', { class: 'mono' }, d.name),
          h('td', null, d.condition),
          h('td', null, tag(d.enabled ? (d.firing ? d.firing + ' firing' : 'on') : 'off', d.firing ? 'warn' : '')),
          h('td', null, data.can_control && d.enabled ? h('button', { class: 'btn', 'data-testid': 'run-directive', onclick: () => act('/api/directives/' + encodeURIComponent(d.name) + '/run', {}, 'run ' + d.name) }, 'Run now') : null)))))
        : h('div', { class: 'empty-state' }, 'No directives run in this agent.'));
      runsBox.replaceChildren(data.runs.length ? h('table', { class: 'data stack', 'data-testid': 'runs-table' },
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Directive'), h('th', null, 'Trigger'), h('th', { class: 'hide-sm' }, 'By'), h('th', null, 'Outcome'), h('th', null, 'Actions'))),
        h('tbody', null, data.runs.map((r) => h('tr', { 'data-testid': 'run-row', 'data-outcome': r.outcome, 'data-trigger': r.trigger },
          h('td', { style: { whiteSpace: 'nowrap' } }, fmtDateTime(nsToMs(r.started))),
          h('td', { class: 'mono' }, r.directive),
          h('td', null, r.trigger),
          h('td', { class: 'hide-sm' }, r.by),
          h('td', null, tag(r.outcome, /failed|gave_up/.test(r.outcome) ? 'error' : /pending|rate|rejected|expired/.test(r.outcome) ? 'warn' : 'ok')),
          h('td', null, (r.actions || []).map((a) => a.action + ' ' + a.outcome + (a.detail ? ' (' + a.detail + ')' : '')).join('; '))))))
        : h('div', { class: 'empty-state' }, 'No runs yet: a firing, a schedule or a run by hand shows here.'));
    }
    async function load() {
      try {
        data = await api('/api/control');
        data.directives = data.directives || [];
        data.approvals = data.approvals || [];
        data.runs = data.runs || [];
        data.incidents = data.incidents || [];
        render();
        markLoaded('control');
      } catch (e) {
        if (e.status !== 401) approvalsBox.replaceChildren(h('div', { class: 'empty-state' }, 'Could not load: ' + e.message));
      }
    }
    load();
    every(3000, load);
    return { title: 'Control', el };
  }

  // ---- Token form ----
  function needToken(message) {
    if (authNeeded) {
      const err = document.querySelector('[data-testid="token-error"]');
      if (err && message) { err.textContent = message; err.hidden = false; }
      return;
    }
    authNeeded = true;
    stopStream();
    setLiveState('locked');
    clearBanner();
    if (page && page.destroy) page.destroy();
    page = null;
    clearTimers();
    M.page = 'token';
    const input = h('input', { type: 'password', autocomplete: 'current-password', placeholder: 'Access token', 'data-testid': 'token-input', 'aria-label': 'Access token', required: true });
    const err = h('div', { class: 'err', 'data-testid': 'token-error', hidden: !message }, message || '');
    const form = h('form', { class: 'token-form', 'data-testid': 'token-form', onsubmit: async (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      setToken(t);
      authNeeded = false;
      try {
        await api('/api/overview', { minutes: 1 });
        route();
      } catch (ex) {
        if (ex.status !== 401) { authNeeded = false; route(); }
      }
    } }, input, h('button', { class: 'btn primary', type: 'submit', 'data-testid': 'token-submit' }, 'Open dashboard'), err);
    app().replaceChildren(h('div', { class: 'panel token-card' },
      h('h1', null, 'Sign in'),
      h('p', null, 'This dashboard needs an access token: one of the bearer tokens the agent or ', h('code', null, 'mission-ctl dashboard'), ' was started with.'),
      form));
    document.title = 'Sign in · Mission Control';
    setTimeout(() => input.focus(), 0);
  }
  function onAuthenticated() {
    if (!es && !authNeeded) startStream();
  }

  // ------------------------------------------------------------------------------------------
  // Router.
  function clearTimers() {
    while (timers.length) { const t = timers.pop(); clearInterval(t); clearTimeout(t); }
  }
  function route() {
    if (authNeeded) return;
    const hash = location.hash.replace(/^#/, '') || '/';
    const path = hash.split('?')[0];
    if (page && page.destroy) page.destroy();
    clearTimers();
    let name;
    const m = path.match(/^\/threads\/(.+)$/);
    const params = new URLSearchParams(hash.split('?')[1] || '');
    const view = views.find((v) => v.match.test(path));
    M.loaded = null;
    delete document.body.dataset.loaded;
    // `M.page` is set before the page is made, so only the page shown marks itself loaded.
    if (view) { name = view.nav || view.name; M.page = view.name; page = view.page(path.match(view.match), params); }
    else if (m) { name = 'threads'; M.page = 'thread'; page = threadPage(decodeURIComponent(m[1])); }
    else if (path.startsWith('/threads')) { name = 'threads'; M.page = 'threads'; page = threadsPage(); }
    else if (path.startsWith('/anomalies')) { name = 'anomalies'; M.page = 'anomalies'; page = anomaliesPage(); }
    else if (path.startsWith('/logs')) { name = 'logs'; M.page = 'logs'; page = logsPage(); }
    else if (path.startsWith('/control')) { name = 'control'; M.page = 'control'; page = controlPage(); }
    else { name = 'overview'; M.page = 'overview'; page = overviewPage(); }
    if (!authNeeded) {
      app().replaceChildren(page.el);
      document.title = page.title + ' · Mission Control';
      document.querySelectorAll('.tabs a').forEach((a) => a.classList.toggle('active', a.dataset.route === name));
      window.scrollTo(0, 0);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Extension points for the view files (assets/views/*.js, loaded after this file, before the
  // first route): pages on their own hash routes and panels on the thread page. A view is
  // `{name, match: RegExp on the hash path, page(match, params) -> {el, title, destroy?, resize?,
  // onSpan?, onFrame?, onLog?, onAnomaly?, onAlert?: the stream, as the built-in pages get it},
  // nav?: the tab to highlight}`; a thread panel is `(threadData, {id, select, reload, spans})
  // -> Element | null`. `kit` holds the helpers every page uses, so views look like the rest.
  const views = [];
  const threadPanels = [];
  const threadsLists = []; // (pageEl, tbody) => void: additions to the Threads page (diff.js: Compare)
  const opCardDecorators = [];
  window.MissionDashboard = {
    view(v) { views.push(v); },
    threadPanel(fn) { threadPanels.push(fn); },
    // `fn({el, chart, op}, overview)`, after each operation chart of the overview is drawn.
    opCard(fn) { opCardDecorators.push(fn); },
    threadsList(fn) { threadsLists.push(fn); },
    route: () => route(),
    kit: {
      h, append, svgEl, escXml, num, orNull, api, apiPost, ApiError, showBanner, clearBanner,
      fmtInt, fmtCompact, fmtMs, fmtUsd, fmtPct, fmtBytes, fmtClock, fmtDateTime, fmtAgo, nsToMs,
      shortId, debounce, kindClass, tag, statusTag, makeChart, drawChart, legend, every, later,
      markLoaded, KIND_LABEL, PALETTE, M, hashParams, setHashParams, windowSelect,
    },
  };

  function start() {
    document.querySelector('[data-testid="theme-toggle"]').addEventListener('click', () => {
      const rootEl = document.documentElement;
      const dark = rootEl.dataset.theme ? rootEl.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
      rootEl.dataset.theme = dark ? 'light' : 'dark';
      try { localStorage.setItem('mission.theme', rootEl.dataset.theme); } catch (_) { /* no storage */ }
      if (page && page.resize) page.resize();
    });
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { if (page && page.resize) page.resize(); });
    let lastW = innerWidth;
    window.addEventListener('resize', debounce(() => {
      if (innerWidth !== lastW && page && page.resize) { lastW = innerWidth; page.resize(); }
    }, 150));
    window.addEventListener('hashchange', route);
    route();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
