// The Exports page (assets/views/exports.js) in headless Chromium against the test agent: the
// downloads hold what the API exports, within the token's tenant, and a cut-short export says so;
// Print report opens the report (/api/report.html) in a new tab, within the token's tenant.
//
// Needs MISSION_DASHBOARD_AGENT (tests/browser/run.sh sets it). Screenshot: out/exports.png.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { launchBrowser, newPage, startAgent } = require('./harness');

const BETA = 'beta-viewer-token-0123456789';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

async function openExports(agent, token) {
  const page = await newPage(browser);
  await page.goto(`${agent.url}/?token=${encodeURIComponent(token)}#/exports`);
  await page.waitForSelector('body[data-loaded="exports"]', { timeout: 10000 });
  return page;
}

// Clicks a download button; resolves with the saved file's text.
async function download(page, testid) {
  const [file] = await Promise.all([
    page.waitForEvent('download', { timeout: 15000 }),
    page.click(`[data-testid="${testid}"]`),
  ]);
  const saved = await file.path();
  return { name: file.suggestedFilename(), text: fs.readFileSync(saved, 'utf8') };
}

async function noteSettled(page) {
  await page.waitForFunction(() => {
    const n = document.querySelector('[data-testid="export-note"]');
    return n && n.dataset.truncated !== undefined && !n.textContent.startsWith('Preparing');
  }, null, { timeout: 15000 });
  return page.$eval('[data-testid="export-note"]', (n) => ({ text: n.textContent, truncated: n.dataset.truncated }));
}

describe('the Exports page', () => {
  let agent;
  before(async () => {
    agent = await startAgent(['--tenant-token', `${BETA}:beta`]);
    assert.equal((await agent.cmd('threads 6')).ok, true);
    assert.equal((await agent.cmd('threads 3 beta')).ok, true);
    await agent.cmd('flush');
  });
  after(async () => { if (agent) await agent.stop(); });

  it('downloads every thread with its spans as JSON Lines, and the metrics', async () => {
    const page = await openExports(agent, agent.token);
    assert.equal(await page.$eval('[data-testid="nav-exports"]', (a) => a.classList.contains('active')), true);
    const jsonl = await download(page, 'export-jsonl');
    assert.equal(jsonl.name, 'threads.jsonl');
    const lines = jsonl.text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 9);
    assert.ok(lines.every((l) => Array.isArray(l.spans) && l.spans.length === l.spans.filter((s) => s.thread_id === l.thread_id).length && l.spans.length > 0));
    assert.equal((await noteSettled(page)).truncated, 'false');
    const metrics = await download(page, 'export-metrics');
    assert.ok(metrics.text.endsWith('# EOF\n'), metrics.text.slice(-200));
    assert.match(metrics.text, /^mission_events_recorded_total \d+/m);
    await page.screenshot({ path: path.join(__dirname, 'out', 'exports.png'), fullPage: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('says when the CSV was cut short by the limit', async () => {
    const page = await openExports(agent, agent.token);
    await page.fill('[data-testid="export-limit"]', '2');
    const csv = await download(page, 'export-csv');
    assert.equal(csv.name, 'threads.csv');
    const rows = csv.text.trim().split('\r\n');
    assert.equal(rows.length, 3, csv.text);
    assert.match(rows[0], /^thread_id,tenant,agent,status,/);
    const note = await noteSettled(page);
    assert.equal(note.truncated, 'true');
    assert.match(note.text, /truncated/);
    await page.close();
  });

  it('exports only the token\'s tenant', async () => {
    const page = await openExports(agent, BETA);
    const jsonl = await download(page, 'export-jsonl');
    const lines = jsonl.text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.deepEqual([...new Set(lines.map((l) => l.tenant))], ['beta']);
    await page.close();
  });
  // Clicks Print report; resolves with the new tab's title and text once the report is there.
  async function printReport(page) {
    const [tab] = await Promise.all([
      page.waitForEvent('popup', { timeout: 15000 }),
      page.click('[data-testid="export-report"]'),
    ]);
    await tab.waitForURL(/^blob:/, { timeout: 15000 });
    await tab.waitForSelector('h1', { timeout: 15000 });
    const report = { title: await tab.title(), text: await tab.$eval('body', (b) => b.innerText), tenants: await tab.$$eval('table', (tables) => {
      // The tenant column of the slowest-threads table.
      const t = tables.find((x) => [...x.querySelectorAll('th')].some((th) => th.textContent === 'tenant'));
      if (!t) return [];
      const col = [...t.querySelectorAll('th')].findIndex((th) => th.textContent === 'tenant');
      return [...t.querySelectorAll('tbody tr')].map((tr) => tr.children[col].textContent);
    }) };
    await tab.close();
    return report;
  }

  it('opens the print-ready report in a new tab', async () => {
    const page = await openExports(agent, agent.token);
    const report = await printReport(page);
    assert.match(report.title, /^Mission Control report, /);
    assert.match(report.text, /Mission Control report/);
    assert.match(report.text, /Tenants: all/);
    for (const section of ['Volumes', 'Latency by operation', 'Cost by model', 'Slowest threads', 'Top errors']) {
      assert.ok(report.text.includes(section), section);
    }
    assert.deepEqual([...new Set(report.tenants)].sort(), ['acme', 'beta']);
    const note = await noteSettled(page);
    assert.match(note.text, /^Report: \d+ bytes, opened in a new tab/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('reports only the token\'s tenant', async () => {
    const page = await openExports(agent, BETA);
    const report = await printReport(page);
    assert.match(report.text, /Tenant: beta/);
    assert.ok(report.tenants.length > 0);
    assert.deepEqual([...new Set(report.tenants)], ['beta']);
    assert.ok(!report.text.includes('acme'));
    await page.close();
  });
});
