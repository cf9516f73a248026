// The Advice and Audit pages in headless Chromium, over `mission-ctl dashboard` on a store with
// the planted data of `store_fixture --advice` (mission_examples::advice): the recommendations
// page lists the planted recommendations and marks the planted changepoint with its cause; the
// audit browser flags the planted denial, restores its filters from the URL, exports what it
// shows, and reports a broken chain once the audit file is tampered with.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { launchBrowser, newPage, buildStore, startCtlDashboard, apiGet, writeOut } = require('./harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

async function open(server, hash) {
  const page = await newPage(browser);
  await page.goto(`${server.url}/?token=${encodeURIComponent(server.token)}${hash}`);
  return page;
}
async function waitLoaded(page, name) {
  await page.waitForSelector(`body[data-loaded="${name}"]`, { timeout: 30000 });
}

describe('advice and audit over a store with planted data', () => {
  let store, server;
  before(async () => {
    store = await buildStore(30, ['--advice']);
    server = await startCtlDashboard(store.dir, 'store-token-' + crypto.randomBytes(8).toString('hex'));
  });
  after(() => { if (server) server.stop(); });

  it('lists the planted recommendations with their numbers', async () => {
    const page = await open(server, '#/advice');
    await waitLoaded(page, 'advice');
    const rows = await page.$$eval('[data-testid="recommendation"]', (els) => els.map((e) => ({
      kind: e.dataset.kind, subject: e.dataset.subject, saving: e.dataset.saving, text: e.textContent,
    })));
    const find = (kind, subject) => rows.find((r) => r.kind === kind && r.subject === subject);
    const sizing = find('model_right_sizing', 'advice-bot/summarize');
    assert.ok(sizing, JSON.stringify(rows));
    assert.ok(Math.abs(Number(sizing.saving) - 0.8) < 1e-9, sizing.saving);
    assert.match(sizing.text, /advice-small/);
    assert.ok(find('prompt_cache', 'advice-large'), 'prompt cache of the dear model');
    assert.ok(!find('prompt_cache', 'advice-small'), '80 % cached is not advised');
    assert.ok(find('slow_tool', 'advice_slow_search'));
    const failing = find('failing_tool', 'advice_flaky_api');
    assert.ok(failing);
    assert.match(failing.text, /upstream 503 \(planted\)/);
    assert.ok(find('budget_burn', 'advice-bot/cost_usd'));
    // The largest saving is listed first.
    assert.equal(rows[0].kind, 'model_right_sizing');
    // The same as the JSON API.
    const api = await apiGet(server, '/api/recommendations?minutes=1440');
    assert.equal(api.recommendations.length, rows.length);

    // The operation with the planted changepoint: a marker whose tooltip names the cause, the
    // forecast band, and the SLO line with where it comes from.
    const op = '[data-testid="advice-op"][data-op="llm_call/summarize"]';
    await page.waitForSelector(`${op} [data-testid="changepoint"]`);
    const cause = await page.$eval(`${op} [data-testid="changepoint"]`, (g) => [g.dataset.cause, g.querySelector('title').textContent]);
    assert.equal(cause[0], 'model=advice-large');
    assert.match(cause[1], /cause: model=advice-large/);
    assert.ok(await page.$(`${op} [data-testid="slo-line"]`), 'the SLO is drawn');
    assert.match(await page.$eval('[data-testid="slo-source"]', (e) => e.textContent), /default 2s/);
    const state = await page.$eval(`${op} [data-testid="slo-crossing"]`, (e) => e.dataset.state);
    assert.ok(['above', 'crosses', 'below'].includes(state), state);
    await page.screenshot({ path: path.join(__dirname, 'out', 'advice.png'), fullPage: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('takes the SLO from the URL and says when the forecast crosses it', async () => {
    // 1 ms: every operation is above it now.
    const page = await open(server, '#/advice?slo_ms=1');
    await waitLoaded(page, 'advice');
    assert.match(await page.$eval('[data-testid="slo-source"]', (e) => e.textContent), /from the URL/);
    const states = await page.$$eval('[data-testid="slo-crossing"]', (els) => els.map((e) => e.dataset.state));
    assert.ok(states.length > 0 && states.every((s) => s === 'above'), JSON.stringify(states));
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('marks the overview\'s operation charts too: the changepoint, and the SLO crossing once an SLO is set', async () => {
    const op = '[data-testid="op-card"][data-op="llm_call/summarize"]';
    // No SLO set (the default is only the Advice page's): the changepoint, no crossing.
    let page = await open(server, '#/?minutes=360');
    await waitLoaded(page, 'overview');
    await page.waitForSelector(`${op} [data-testid="changepoint"]`, { timeout: 10000 });
    assert.equal(await page.$eval(`${op} [data-testid="changepoint"]`, (g) => g.dataset.cause), 'model=advice-large');
    assert.equal(await page.$(`${op} [data-testid="op-slo"]`), null);
    await page.close();
    // With an SLO in the URL: 1 ms, so every operation is above it now.
    page = await open(server, '#/?minutes=360&slo_ms=1');
    await waitLoaded(page, 'overview');
    await page.waitForSelector(`${op} [data-testid="op-slo"]`, { timeout: 10000 });
    assert.equal(await page.$eval(`${op} [data-testid="op-slo"]`, (a) => a.dataset.state), 'above');
    assert.match(await page.$eval(`${op} [data-testid="op-slo"]`, (a) => a.title), /from the URL/);
    assert.equal(await page.$$eval(`${op} [data-testid="changepoint"]`, (gs) => gs.length), 1, 'marked once');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('flags the planted denial, restores filters from the URL and exports what it shows', async () => {
    const page = await open(server, '#/audit');
    await waitLoaded(page, 'audit');
    assert.equal(await page.$eval('[data-testid="audit-chain"]', (e) => e.dataset.ok), 'true');
    const rows = await page.$$eval('[data-testid="audit-row"]', (els) => els.map((e) => ({
      kind: e.dataset.kind, suspicious: e.dataset.suspicious, cls: e.className, text: e.textContent,
    })));
    assert.equal(rows.length, 5, JSON.stringify(rows));
    const denial = rows.find((r) => r.kind === 'permission_denied');
    assert.equal(denial.suspicious, 'denial');
    assert.match(denial.cls, /suspicious/);
    assert.match(denial.text, /agent:advice-bot/);
    assert.equal(rows.find((r) => r.kind === 'erasure').suspicious, 'erasure');
    assert.equal(rows.find((r) => r.kind === 'policy_change').suspicious, 'policy change');
    assert.ok(rows.filter((r) => r.kind === 'directive_run').every((r) => !r.suspicious && !/suspicious/.test(r.cls)));

    // Filters come back from a shared URL.
    const filtered = await open(server, '#/audit?type=permission_denied&actor=advice');
    await waitLoaded(filtered, 'audit');
    assert.equal(await filtered.$eval('[data-testid="audit-type"]', (e) => e.value), 'permission_denied');
    assert.equal(await filtered.$eval('[data-testid="audit-actor"]', (e) => e.value), 'advice');
    const kinds = await filtered.$$eval('[data-testid="audit-row"]', (els) => els.map((e) => e.dataset.kind));
    assert.deepEqual(kinds, ['permission_denied']);
    // Changing a filter updates the URL.
    await filtered.selectOption('[data-testid="audit-severity"]', 'critical');
    await filtered.waitForFunction(() => location.hash.includes('severity=critical'));
    await filtered.waitForFunction(() => document.querySelectorAll('[data-testid="audit-row"]').length === 0);
    await filtered.close();

    // Export: what the page shows, as JSON Lines and CSV.
    const [jsonl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="audit-export-jsonl"]')]);
    const lines = fs.readFileSync(await jsonl.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 5);
    assert.ok(lines.some((l) => l.kind === 'permission_denied' && l.actor === 'agent:advice-bot'));
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="audit-export-csv"]')]);
    const csvLines = fs.readFileSync(await csv.path(), 'utf8').trim().split('\n');
    assert.equal(csvLines.length, 6, 'a header and five rows');
    assert.match(csvLines[0], /^seq,n,time_ns,kind,actor/);
    await page.screenshot({ path: path.join(__dirname, 'out', 'audit.png'), fullPage: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('reports a broken chain at the tampered entry', async () => {
    // Edit the third record's detail without rehashing it.
    const file = path.join(store.dir, 'audit', 'audit.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const record = JSON.parse(lines[2]);
    assert.equal(record.seq, 3);
    lines[2] = lines[2].replace('"outcome":"ok"', '"outcome":"tampered"');
    assert.notEqual(lines[2], JSON.stringify(record));
    fs.writeFileSync(file, lines.join('\n'));
    const page = await open(server, '#/audit');
    await waitLoaded(page, 'audit');
    const chain = await page.$eval('[data-testid="audit-chain"]', (e) => ({ ok: e.dataset.ok, at: e.dataset.brokenAt, text: e.textContent }));
    assert.equal(chain.ok, 'false', chain.text);
    assert.equal(chain.at, '3');
    assert.match(chain.text, /broken at entry 3: hash_mismatch/);
    const broken = await page.$$eval('[data-testid="audit-row"][data-broken="true"]', (els) => els.map((e) => e.textContent));
    assert.equal(broken.length, 1);
    assert.match(broken[0], /chain breaks here/);
    await page.screenshot({ path: path.join(__dirname, 'out', 'audit-broken.png'), fullPage: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('answers the API with a 400 naming a bad parameter', async () => {
    for (const [route, name] of [['/api/audit?limit=0', 'limit'], ['/api/audit?severity=loud', 'severity'],
      ['/api/audit?from=yesterday', 'from'], ['/api/recommendations?minutes=0', 'minutes']]) {
      const r = await fetch(server.url + route, { headers: { Authorization: 'Bearer ' + server.token } });
      assert.equal(r.status, 400, route);
      const body = await r.json();
      assert.equal(body.error, 'bad_request');
      assert.match(body.message, new RegExp(name));
    }
    writeOut('advice-recommendations.json', await apiGet(server, '/api/recommendations'));
  });
});
