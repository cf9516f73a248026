// Keyboard-first use of the dashboard in a real browser: the command palette (Ctrl+K) finds a
// thread and runs actions by role (a viewer's runs, an operator's is refused for a viewer and
// runs for an operator), J/K move in lists, and every view's filters and time range come back
// from its URL.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { launchBrowser, newPage, startAgent, apiGet } = require('./harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

async function open(server, token, hash) {
  const page = await newPage(browser);
  await page.goto(`${server.url}/?token=${encodeURIComponent(token)}${hash}`);
  return page;
}
const waitLoaded = (page, name) => page.waitForSelector(`body[data-loaded="${name}"]`, { timeout: 10000 });
async function openPalette(page) {
  await page.keyboard.press('Control+k');
  await page.waitForSelector('[data-testid="palette"]', { timeout: 5000 });
  await page.waitForFunction(() => window.__mission.palette && window.__mission.palette.ready, null, { timeout: 10000 });
}
// Types `text` into the palette and waits until the item `id` is listed first.
async function pick(page, text, id) {
  await page.fill('[data-testid="palette-input"]', text);
  try {
    await page.waitForFunction((want) => {
      const first = document.querySelector('[data-testid="palette-item"].active');
      return first && first.dataset.id === want;
    }, id, { timeout: 10000 });
  } catch (e) {
    const listed = await page.$$eval('[data-testid="palette-item"]', (lis) => lis.map((li) => li.dataset.id));
    throw new Error(`"${text}": waited for ${id} first; listed ${JSON.stringify(listed.slice(0, 8))}`);
  }
}
function assertNoErrors(page) {
  assert.deepEqual(page.errors, [], 'script errors in the page');
}

describe('command palette, J/K and addressable views', () => {
  let agent;
  let ids;
  const viewer = 'viewer-token-' + crypto.randomBytes(8).toString('hex');
  before(async () => {
    agent = await startAgent(['--tenant-token', `${viewer}:acme`]);
    const seeded = await agent.cmd('threads 6');
    assert.equal(seeded.ok, true, JSON.stringify(seeded));
    ids = seeded.thread_ids;
    await agent.cmd('flush');
  });
  after(async () => { if (agent) await agent.stop(); });

  it('finds a thread by a piece of its id and opens it with Enter', async () => {
    const page = await open(agent, agent.token, '#/');
    await waitLoaded(page, 'overview');
    await openPalette(page);
    const id = ids[2];
    await pick(page, id.slice(-10), 'thread:' + id);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`[data-testid="page-thread"][data-thread-id="${id}"]`, { timeout: 10000 });
    assert.equal(await page.$('[data-testid="palette"]'), null, 'the palette closes after navigating');
    await page.screenshot({ path: path.join(__dirname, 'out', 'palette-thread.png') });
    assertNoErrors(page);
    await page.close();
  });

  it('a viewer runs a viewer action and is refused an operator action without a request', async () => {
    const page = await open(agent, viewer, '#/threads?status=ok');
    await waitLoaded(page, 'threads');
    const posts = [];
    page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
    page.on('dialog', (d) => d.accept('ok threads'));
    await openPalette(page);
    await pick(page, 'save this view', 'save-view');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid="palette-note"][data-kind="ok"]', { timeout: 5000 });
    const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('mission.views')));
    assert.deepEqual(saved, [{ name: 'ok threads', hash: '#/threads?status=ok' }]);

    await pick(page, 'run directive loop-guard', 'directive:loop-guard');
    assert.equal(await page.$eval('[data-testid="palette-item"].active', (li) => li.dataset.role), 'operator');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid="palette-note"][data-kind="refused"]', { timeout: 5000 });
    assert.match(await page.textContent('[data-testid="palette-note"]'), /needs an operator token/);
    assert.deepEqual(posts, [], 'nothing was sent for the refused action');
    const runs = (await apiGet(agent, '/api/control')).runs.filter((r) => r.trigger === 'manual');
    assert.deepEqual(runs, [], 'no run by hand happened');

    // The saved view is in the palette and restores the filter.
    await page.keyboard.press('Escape');
    await page.evaluate(() => { location.hash = '#/logs'; });
    await waitLoaded(page, 'logs');
    await openPalette(page);
    await pick(page, 'ok threads', 'view:ok threads');
    await page.keyboard.press('Enter');
    await waitLoaded(page, 'threads');
    assert.equal(await page.$eval('[data-testid="threads-status"]', (s) => s.value), 'ok');
    assertNoErrors(page);
    await page.close();
  });

  it('an operator runs a directive from the palette', async () => {
    const page = await open(agent, agent.token, '#/control');
    await waitLoaded(page, 'control');
    await openPalette(page);
    await pick(page, 'run directive loop-guard', 'directive:loop-guard');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid="palette-note"][data-kind="ok"]', { timeout: 10000 });
    assert.match(await page.textContent('[data-testid="palette-note"]'), /^Run \d+ of loop-guard/);
    const runs = (await apiGet(agent, '/api/control')).runs.filter((r) => r.trigger === 'manual');
    assert.equal(runs.length, 1, JSON.stringify(runs));
    assert.equal(runs[0].directive, 'loop-guard');
    assertNoErrors(page);
    await page.close();
  });

  it('J and K move through the threads list and Enter opens the row', async () => {
    const page = await open(agent, agent.token, '#/threads');
    await waitLoaded(page, 'threads');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="thread-row"]').length >= 3, null, { timeout: 10000 });
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    await page.keyboard.press('k');
    const rows = await page.$$eval('[data-testid="thread-row"]', (trs) => trs.map((tr) => [tr.dataset.threadId, tr.classList.contains('kb-current')]));
    assert.deepEqual(rows.map(([, on]) => on).indexOf(true), 1, 'the second row is current');
    assert.equal(rows.filter(([, on]) => on).length, 1);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`[data-testid="page-thread"][data-thread-id="${rows[1][0]}"]`, { timeout: 10000 });
    assertNoErrors(page);
    await page.close();
  });

  it('a URL restores each view: filters and time range', async () => {
    const page = await open(agent, agent.token, '#/?minutes=60');
    await waitLoaded(page, 'overview');
    assert.equal(await page.$eval('[data-testid="overview-window"]', (s) => s.value), '60');
    await page.selectOption('[data-testid="overview-window"]', '360');
    assert.match(await page.evaluate(() => location.hash), /^#\/\?minutes=360$/);

    await page.evaluate(() => { location.hash = '#/threads?agent=researcher&status=error&minutes=1440'; });
    await waitLoaded(page, 'threads');
    assert.equal(await page.$eval('[data-testid="threads-status"]', (s) => s.value), 'error');
    assert.equal(await page.$eval('[data-testid="threads-window"]', (s) => s.value), '1440');
    assert.equal(await page.$eval('[data-testid="threads-agent"]', (s) => s.value), 'researcher');
    await page.selectOption('[data-testid="threads-window"]', '60');
    const hash = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]);
    assert.deepEqual(Object.fromEntries(hash), { agent: 'researcher', status: 'error', minutes: '60' });

    await page.evaluate(() => { location.hash = '#/anomalies?minutes=10080'; });
    await waitLoaded(page, 'anomalies');
    assert.equal(await page.$eval('[data-testid="anomalies-window"]', (s) => s.value), '10080');
    // A window no menu offers still comes back from the URL.
    await page.evaluate(() => { location.hash = '#/anomalies?minutes=90'; });
    await waitLoaded(page, 'anomalies');
    assert.equal(await page.$eval('[data-testid="anomalies-window"]', (s) => s.value), '90');
    assertNoErrors(page);
    await page.close();
  });
});

describe('the permission flow of a thread', () => {
  let agent;
  before(async () => { agent = await startAgent(); });
  after(async () => { if (agent) await agent.stop(); });

  it('draws the lineage, each resource asked for, and the ancestor that narrowed a denial', async () => {
    const made = await agent.cmd('lineage');
    assert.equal(made.ok, true, JSON.stringify(made));
    assert.deepEqual(made.allowed, [true, false]);
    const page = await open(agent, agent.token, '#/threads/' + made.child);
    await waitLoaded(page, 'thread');
    await page.waitForSelector('[data-testid="perm-flow"]', { timeout: 10000 });
    const levels = await page.$$eval('[data-testid="perm-flow-level"]', (gs) => gs.map((g) => [g.dataset.depth, g.dataset.threadId]));
    assert.deepEqual(levels, [['0', made.parent], ['1', made.child]]);
    const resources = await page.$$eval('[data-testid="perm-flow-resource"]', (gs) => gs.map((g) => [g.dataset.resource, g.dataset.decision, g.dataset.allowed, g.dataset.denied]));
    assert.deepEqual(resources, [['refund_payment', 'deny', '0', '1'], ['search_docs', 'allow', '1', '0']]);
    const narrowed = await page.$$eval('[data-testid="perm-flow-narrowed"]', (ps) => ps.map((p) => [p.dataset.depth, p.dataset.resource]));
    assert.deepEqual(narrowed, [['0', 'refund_payment']]);
    await page.screenshot({ path: path.join(__dirname, 'out', 'permission-flow.png'), fullPage: true });
    assertNoErrors(page);
    await page.close();
  });
});
