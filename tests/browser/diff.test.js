// Thread diff, replay and flamegraph in a real browser (Debian's headless Chromium) against the
// test agent: its `diffpair` command records two runs of `support-bot` whose second diverges
// at a known step and field (mission_examples::record_diff_pair).
//
// Needs MISSION_DASHBOARD_AGENT, MISSION_CTL and MISSION_STORE_FIXTURE (tests/browser/run.sh
// sets them). Writes screenshots to tests/browser/out/.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { launchBrowser, newPage, startAgent, apiGet, OUT } = require('./harness');

let browser;
before(async () => { fs.mkdirSync(OUT, { recursive: true }); browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

async function open(server, hash) {
  const page = await newPage(browser);
  await page.goto(`${server.url}/?token=${encodeURIComponent(server.token)}${hash}`);
  return page;
}
async function waitLoaded(page, name, timeout = 15000) {
  await page.waitForSelector(`body[data-loaded="${name}"]`, { timeout });
}
function assertNoErrors(page) {
  assert.deepEqual(page.errors, [], 'script errors in the page');
}
async function apiStatus(server, route) {
  const r = await fetch(server.url + route, { headers: { Authorization: 'Bearer ' + server.token } });
  return { status: r.status, body: await r.json() };
}
const replayState = (page) => page.$eval('[data-testid="replay-state"]', (el) => ({ ...el.dataset }));

describe('thread diff, replay and flamegraph', () => {
  let agent;
  let pair;
  before(async () => {
    agent = await startAgent();
    const seeded = await agent.cmd('threads 5');
    assert.equal(seeded.ok, true, JSON.stringify(seeded));
    pair = await agent.cmd('diffpair');
    assert.equal(pair.ok, true, JSON.stringify(pair));
    await agent.cmd('flush');
  });
  after(async () => { if (agent) await agent.stop(); });

  it('a diff finds the planted divergence (API, page, URL, threads list)', async () => {
    const d = await apiGet(agent, `/api/diff?a=${pair.good}&b=${pair.bad}`);
    assert.equal(d.identical, false);
    assert.equal(d.first_divergence.step, pair.step);
    assert.equal(d.first_divergence.field, pair.field);
    assert.equal(d.first_divergence.name, 'web_search');
    assert.notEqual(d.first_divergence.a, d.first_divergence.b);
    assert.equal(d.pairs.length, pair.spans);
    const same = await apiGet(agent, `/api/diff?a=${pair.good}&b=${pair.good}`);
    assert.equal(same.identical, true);
    assert.equal(same.first_divergence, null);
    // Typed errors: a malformed id is a 400 naming it, an unknown thread a 404.
    const bad = await apiStatus(agent, `/api/diff?a=nope&b=${pair.bad}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'bad_request');
    assert.match(bad.body.message, /^a must be/);
    const unknown = await apiStatus(agent, `/api/diff?a=${pair.good}&b=0123456789abcdef0123456789abcdef`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'not_found');

    const page = await open(agent, `#/diff?a=${pair.good}&b=${pair.bad}`);
    await waitLoaded(page, 'diff');
    const first = page.locator('[data-testid="diff-first"]');
    assert.equal(await first.getAttribute('data-step'), String(pair.step));
    assert.equal(await first.getAttribute('data-field'), pair.field);
    assert.equal(await page.locator('[data-testid="diff-row"]').count(), pair.spans);
    const row = page.locator('tr[data-first="true"]');
    assert.equal(await row.count(), 1);
    assert.equal(await row.getAttribute('data-step'), String(pair.step));
    assert.match(await row.getAttribute('data-differs'), /^args_hash/);
    for (const side of ['a', 'b']) {
      assert.match(await row.locator(`td[data-side="${side}"]`).innerText(), /web_search/);
    }
    assert.equal(await page.locator('[data-testid="nav-diff"].active').count(), 1);
    assert.doesNotMatch(await page.innerText('[data-testid="diff-body"]'), /\bnull\b/);
    await page.screenshot({ path: path.join(OUT, 'diff.png'), fullPage: true });
    // The URL restores the view.
    await page.reload();
    await waitLoaded(page, 'diff');
    assert.equal(await page.locator('[data-testid="diff-first"]').getAttribute('data-step'), String(pair.step));
    assert.equal(await page.inputValue('[data-testid="diff-a"]'), pair.good);
    // Swapping A and B keeps the divergence where it is.
    await page.click('[data-testid="diff-swap"]');
    await page.waitForFunction((bad) => location.hash.includes('a=' + bad), pair.bad);
    await waitLoaded(page, 'diff');
    assert.equal(await page.locator('[data-testid="diff-first"]').getAttribute('data-step'), String(pair.step));
    // Identical, then malformed (the browser logs the 400 it was answered, and nothing else).
    await page.goto(`${agent.url}/?token=${encodeURIComponent(agent.token)}#/diff?a=${pair.good}&b=${pair.good}`);
    await page.waitForSelector('[data-testid="diff-identical"]');
    assertNoErrors(page);
    await page.goto(`${agent.url}/?token=${encodeURIComponent(agent.token)}#/diff?a=zz&b=${pair.good}`);
    await page.waitForSelector('[data-testid="diff-error"][data-status="400"]');
    assert.ok(page.errors.every((e) => /status of 400/.test(e)), page.errors.join('; '));

    // From the threads list: Compare, pick two rows, open their diff.
    const list = await open(agent, '#/threads');
    await waitLoaded(list, 'threads');
    await list.waitForSelector(`[data-testid="threads-body"] a[href="#/threads/${pair.bad}"]`);
    await list.click('[data-testid="compare-toggle"]');
    const rowOf = (id) => list.locator(`[data-testid="threads-body"] tr:has(a[href="#/threads/${id}"]) td:nth-child(2)`);
    await rowOf(pair.good).click();
    await rowOf(pair.bad).click();
    assert.equal(await list.locator('tr[data-picked="a"] a').getAttribute('href'), `#/threads/${pair.good}`);
    assert.equal(await list.locator('tr[data-picked="b"] a').getAttribute('href'), `#/threads/${pair.bad}`);
    await list.click('[data-testid="compare-open"]');
    await waitLoaded(list, 'diff');
    assert.equal(await list.locator('[data-testid="diff-first"]').getAttribute('data-step'), String(pair.step));
    assertNoErrors(list);
    await page.close();
    await list.close();
  });

  it('replay steps match the recorded order, with the state at each step', async () => {
    const t = await apiGet(agent, '/api/threads/' + pair.bad);
    // What record_diff_pair recorded, in order: the root step starts; for each step a
    // permission decision before a tool call, the step's start, its log, its end; the root ends.
    const plan = ['chat', 'lookup_order', 'chat', 'web_search', 'chat', 'send_email'];
    const expected = ['start:handle_request'];
    for (const name of plan) {
      if (name !== 'chat') expected.push('decision:' + name);
      expected.push('start:' + name);
      expected.push('log:' + (name === 'send_email' ? 'send_email failed' : name + ' done'));
      expected.push('end:' + name);
    }
    expected.push('end:handle_request');

    const page = await open(agent, '#/threads/' + pair.bad);
    await waitLoaded(page, 'thread');
    await page.waitForSelector('[data-testid="replay-panel"]');
    const steps = await page.$$eval('[data-testid="replay-step"]', (els) => els.map((e) => ({ label: e.dataset.label, ts: Number(e.dataset.ts) })));
    assert.deepEqual(steps.map((s) => s.label), expected);
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i].ts >= steps[i - 1].ts, `step ${i} goes back in time`);

    // The first step: only the root has started.
    let s = await replayState(page);
    assert.deepEqual([s.index, s.started, s.ended, s.running, s.logs, s.decisions, s.tokens], ['0', '1', '0', '1', '0', '0', '0']);
    // → to the end of the first chat: its tokens and cost are known.
    await page.focus('[data-testid="replay-panel"]');
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    s = await replayState(page);
    assert.equal(s.index, '3');
    assert.equal(await page.getAttribute('[data-testid="replay-now"]', 'data-type'), 'end');
    const chat = t.spans.find((x) => x.name === 'chat' && x.start_ns === Math.min(...t.spans.filter((y) => y.name === 'chat').map((y) => y.start_ns)));
    assert.equal(Number(s.tokens), chat.input_tokens + chat.output_tokens);
    assert.deepEqual([s.started, s.ended, s.running, s.logs], ['2', '1', '1', '1']);
    await page.keyboard.press('ArrowLeft');
    assert.equal((await replayState(page)).index, '2');
    // The slider and the last step: everything ended, the totals are the thread's.
    await page.click('[data-testid="replay-last"]');
    s = await replayState(page);
    assert.equal(Number(s.index), expected.length - 1);
    assert.equal(Number(s.started), t.spans.length);
    assert.equal(Number(s.ended), t.spans.length);
    assert.equal(s.running, '0');
    assert.equal(Number(s.logs), t.logs.length);
    assert.equal(Number(s.decisions), t.permissions.length);
    assert.equal(Number(s.errors), 1);
    assert.equal(Number(s.tokens), t.thread.input_tokens + t.thread.output_tokens);
    assert.ok(Math.abs(Number(s.cost) - t.thread.cost_usd) < 1e-9, `${s.cost} vs ${t.thread.cost_usd}`);
    await page.$eval('[data-testid="replay-slider"]', (el) => { el.value = '5'; el.dispatchEvent(new Event('input')); });
    assert.equal((await replayState(page)).index, '5');
    assert.equal(await page.getAttribute('[data-testid="replay-step"].current', 'data-index'), '5');
    for (const i of [1, 2, 4]) {
      // A start, a log, a decision: nothing absent shows as text.
      await page.$eval('[data-testid="replay-slider"]', (el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }, i);
      assert.doesNotMatch(await page.innerText('[data-testid="replay-now"]') + await page.innerText('[data-testid="replay-state"]'), /\bnull\b/);
    }
    await page.$eval('[data-testid="replay-slider"]', (el) => { el.value = '5'; el.dispatchEvent(new Event('input')); });
    await page.locator('[data-testid="replay-panel"]').screenshot({ path: path.join(OUT, 'replay.png') });
    assertNoErrors(page);
    await page.close();
  });

  it('the flamegraph renders one box per span, slow steps marked, a click selects the span', async () => {
    const t = await apiGet(agent, '/api/threads/' + pair.good);
    const page = await open(agent, '#/threads/' + pair.good);
    await waitLoaded(page, 'thread');
    await page.waitForSelector('[data-testid="flamegraph"]');
    const boxes = await page.$$eval('[data-testid="flame-box"]', (els) => els.map((e) => ({
      id: e.dataset.spanId, depth: Number(e.dataset.depth), slow: e.dataset.slow === 'true', ms: Number(e.dataset.durationMs),
    })));
    assert.equal(boxes.length, t.spans.length);
    assert.deepEqual(boxes.map((b) => b.id).sort(), t.spans.map((x) => x.span_id).sort());
    const root = t.spans.find((x) => !x.parent_id);
    for (const b of boxes) assert.equal(b.depth, b.id === root.span_id ? 0 : 1);
    // The slowest step (the second chat, 420 ms) is marked slow; the root never is.
    const slowest = t.spans.filter((x) => x.parent_id).sort((x, y) => y.duration_ms - x.duration_ms)[0];
    assert.equal(slowest.name, 'chat');
    assert.ok(boxes.find((b) => b.id === slowest.span_id).slow);
    assert.ok(!boxes.find((b) => b.id === root.span_id).slow);
    assert.ok(!boxes.find((b) => b.ms === 40).slow, 'lookup_order (40 ms) is not slow');
    const search = t.spans.find((x) => x.name === 'web_search');
    await page.click(`[data-testid="flame-box"][data-span-id="${search.span_id}"]`);
    await page.waitForSelector(`[data-testid="waterfall-row"].selected[data-span-id="${search.span_id}"]`);
    assert.match(await page.innerText('[data-testid="span-details"]'), /web_search/);
    await page.locator('[data-testid="flamegraph"]').screenshot({ path: path.join(OUT, 'flamegraph.png') });
    assertNoErrors(page);
    await page.close();
  });
});
