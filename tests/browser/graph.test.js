// The Graph page (#/graph) in headless Chromium: the test agent records a seeded topology
// (`topology`: agents, tools on an MCP server, models, a child thread, a handoff, denials, a
// directive's alert, a registered artefact) and the page must draw exactly its edges; then the
// agent registers 10 000 artefacts and the page draws the graph at its 10 000-node bound,
// with the render time measured and printed (no assertion on speed: see benches/RESULTS.md).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { launchBrowser, newPage, startAgent, apiGet, writeOut } = require('./harness');

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { if (browser) await browser.close(); });

async function openGraph(server, hash = '#/graph') {
  const page = await newPage(browser);
  await page.goto(`${server.url}/?token=${encodeURIComponent(server.token)}${hash}`);
  await page.waitForSelector('body[data-loaded="graph"]', { timeout: 60000 });
  return page;
}

const key = (e) => `${e.from} -${e.kind}-> ${e.to}`;

describe('relationship graph', () => {
  let agent;
  let seeded;
  before(async () => {
    agent = await startAgent();
    seeded = await agent.cmd('topology');
    assert.equal(seeded.ok, true, JSON.stringify(seeded));
  });
  after(async () => { if (agent) await agent.stop(); });

  it('answers /api/graph with the seeded topology, range-checked', async () => {
    const g = await apiGet(agent, '/api/graph?minutes=60');
    const got = new Map(g.edges.map((e) => [key(e), e]));
    for (const want of seeded.edges) {
      const e = got.get(key(want));
      assert.ok(e, `missing edge ${key(want)} in ${[...got.keys()].join(', ')}`);
      assert.equal(e.calls, want.calls, key(want));
      assert.equal(e.errors, want.errors, key(want));
    }
    assert.equal(g.edges.length, seeded.edges.length, [...got.keys()].join(', '));
    assert.equal(g.nodes.length, seeded.nodes);
    assert.equal(g.truncated, false);
    const ledger = g.nodes.find((n) => n.id === 'datastore:g-ledger');
    assert.equal(ledger.registered, true);
    assert.equal(ledger.attributes.engine, 'postgres');
    const llm = got.get('agent:g-router -uses_model-> model:g-model-a');
    assert.ok(llm.p95_ms > 40 && llm.p95_ms < 60, `p95 ${llm.p95_ms} of 50 ms calls`);
    assert.ok(Math.abs(llm.cost_usd - 0.008) < 1e-9, String(llm.cost_usd));
    for (const bad of ['minutes=0', 'minutes=43201', 'limit=0', 'limit=10001', 'minutes=abc']) {
      const r = await fetch(`${agent.url}/api/graph?${bad}`, { headers: { Authorization: 'Bearer ' + agent.token } });
      assert.equal(r.status, 400, bad);
      const body = await r.json();
      assert.equal(body.error, 'bad_request');
      assert.ok(body.message.includes(bad.split('=')[0]), body.message);
    }
    assert.equal((await fetch(`${agent.url}/api/graph`)).status, 401);
  });

  it('draws the seeded topology with the right edge counts, filters by kind and lists a node\'s edges', async () => {
    const page = await openGraph(agent);
    assert.equal(await page.getAttribute('[data-testid="nav-graph"]', 'class'), 'active');
    const drawn = await page.evaluate(() => ({
      edges: window.__mission.graph.edges.map((e) => ({ from: e.from, to: e.to, kind: e.kind, calls: e.calls, errors: e.errors })),
      nodes: window.__mission.graph.nodes.length,
      renderMs: window.__mission.graph.renderMs,
      drawn: window.__mission.graph.drawn,
    }));
    assert.equal(drawn.nodes, seeded.nodes);
    assert.equal(drawn.drawn.nodes, seeded.nodes, 'every node is on screen after Fit');
    assert.equal(drawn.drawn.edges, seeded.edges.length);
    const byKey = new Map(drawn.edges.map((e) => [key(e), e]));
    for (const want of seeded.edges) {
      assert.deepEqual(byKey.get(key(want)), want, key(want));
    }
    assert.equal(await page.getAttribute('[data-testid="graph-counts"]', 'data-edges'), String(seeded.edges.length));
    await page.screenshot({ path: path.join(__dirname, 'out', 'graph-topology-light-desktop.png') });

    // Hide the tools: their 3 edges (2 calls_tool, 1 served_by) go; the MCP server stays.
    await page.uncheck('[data-testid="graph-kind-tool"]');
    await page.waitForFunction((n) => document.querySelector('[data-testid="graph-counts"]').dataset.edges === String(n), seeded.edges.length - 3);
    assert.equal(await page.getAttribute('[data-testid="graph-counts"]', 'data-nodes'), String(seeded.nodes - 2));
    await page.check('[data-testid="graph-kind-tool"]');

    // Click g-billing on the canvas: its edges, with their weights.
    const at = await page.evaluate(() => window.__mission.graph.screenPos('agent:g-billing'));
    await page.mouse.click(at.x, at.y);
    await page.waitForSelector('[data-testid="graph-selected"]');
    assert.equal(await page.textContent('[data-testid="graph-selected"]'), 'g-billing');
    const rows = await page.$$eval('[data-testid="graph-edge-row"]', (rs) => rs.map((r) => `${r.dataset.kind} ${r.dataset.other} ${r.dataset.calls}`).sort());
    const mine = seeded.edges.filter((e) => e.from === 'agent:g-billing' || e.to === 'agent:g-billing')
      .map((e) => `${e.kind} ${e.from === 'agent:g-billing' ? e.to : e.from} ${e.calls}`).sort();
    assert.deepEqual(rows, mine);
    await page.screenshot({ path: path.join(__dirname, 'out', 'graph-selected-light-desktop.png') });
    // Zoom in with the wheel: labels appear.
    await page.mouse.move(at.x, at.y);
    for (let i = 0; i < 4; i++) await page.mouse.wheel(0, -400);
    await page.waitForFunction(() => window.__mission.graph.drawn && window.__mission.graph.drawn.labels > 0);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('draws 10 000 nodes (the bound) and measures the render time', async () => {
    const n = 10000;
    const reg = await agent.cmd(`artefacts ${n - 1}`, 120000);
    assert.equal(reg.ok, true, JSON.stringify(reg));
    // The registry holds 10 000 artefacts: g-ledger and 9 999 services.
    assert.equal(reg.registered, n - 1);
    const api = await apiGet(agent, '/api/graph?minutes=60');
    assert.equal(api.nodes.length, 10000);
    assert.equal(api.truncated, true);
    assert.equal(api.nodes_total, 10000 + seeded.nodes);
    assert.equal(api.nodes_cut, seeded.nodes);
    const page = await openGraph(agent);
    const m = await page.evaluate(() => {
      const g = window.__mission.graph;
      return { nodes: g.nodes.length, edges: g.edges.length, renderMs: g.renderMs, layoutMs: g.layoutMs, drawn: g.drawn };
    });
    assert.equal(m.nodes, 10000);
    assert.equal(m.drawn.nodes, 10000, 'every node on screen after Fit');
    assert.equal(m.drawn.labels, 0, 'no labels when zoomed out');
    assert.ok(!(await page.isHidden('[data-testid="graph-truncated"]')), 'the cut is shown');
    // A redraw (pan) of the whole graph, timed by the page.
    const before = await page.evaluate(() => window.__mission.graph.draws);
    const box = await page.$eval('[data-testid="graph-canvas"]', (c) => { const r = c.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; });
    await page.mouse.move(box.x, box.y);
    await page.mouse.down();
    await page.mouse.move(box.x + 40, box.y + 20, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction((b) => window.__mission.graph.draws > b, before);
    const redrawMs = await page.evaluate(() => window.__mission.graph.renderMs);
    const figures = { date: new Date().toISOString(), nodes: m.nodes, edges: m.edges, layout_ms: +m.layoutMs.toFixed(1), first_render_ms: +m.renderMs.toFixed(1), redraw_ms: +redrawMs.toFixed(1) };
    console.log('graph render at 10 000 nodes: ' + JSON.stringify(figures));
    writeOut('graph-render.json', figures);
    await page.screenshot({ path: path.join(__dirname, 'out', 'graph-10000-light-desktop.png') });
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
