// What the browser tests start and drive: Debian's Chromium (through playwright-core, never a
// downloaded browser), the test agent that serves the dashboard from its own process, the
// store fixture builder and `mission-ctl dashboard` over a store on disk.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const OUT = path.join(__dirname, 'out');
const CHROMIUM = process.env.MISSION_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const children = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const c of children) { try { c.kill('SIGKILL'); } catch (_) { /* gone */ } }
  for (const d of tempDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch (_) { /* busy */ } }
});

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function binary(envName) {
  const bin = process.env[envName];
  if (!bin) throw new Error(`set ${envName} to the built binary (see tests/browser/run.sh)`);
  if (!fs.existsSync(bin)) throw new Error(`${envName}=${bin} does not exist; build it first`);
  return bin;
}

// Starts Chromium with a fresh profile; returns the persistent context.
async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  const profile = tempDir('mission-chromium-');
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
}

// A new tab that fails the test on any script error; `errors` collects them.
async function newPage(context, { width = 1280, height = 800, colorScheme = 'light' } = {}) {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/401|Unauthorized/i.test(m.text())) page.errors.push(m.text()); });
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme });
  return page;
}

// Spawns a process that prints JSON lines on stdout; `next()` resolves with the next line.
function jsonLines(child, name) {
  const queue = [];
  const waiters = [];
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    line = line.trim();
    if (!line.startsWith('{')) return;
    let v;
    try { v = JSON.parse(line); } catch (_) { return; }
    const w = waiters.shift();
    if (w) w.resolve(v); else queue.push(v);
  });
  child.on('exit', (code) => {
    children.delete(child);
    for (const w of waiters.splice(0)) w.reject(new Error(`${name} exited (${code}): ${stderr}`));
  });
  return {
    next(timeoutMs = 30000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const w = { resolve, reject };
        const t = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`${name}: no answer within ${timeoutMs} ms; stderr: ${stderr}`));
        }, timeoutMs);
        w.resolve = (v) => { clearTimeout(t); resolve(v); };
        w.reject = (e) => { clearTimeout(t); reject(e); };
        waiters.push(w);
      });
    },
    stderr: () => stderr,
  };
}

// The test agent (examples/dashboard_agent.rs), started as `dashboard_agent <store> --token T`:
// prints {"url","token","tenant"}, then answers each stdin command (`threads N`, `span`,
// `log LEVEL TEXT`, `error`, `flush`, `quit`) with one JSON line.
async function startAgent(extraArgs = []) {
  const bin = binary('MISSION_DASHBOARD_AGENT');
  const store = tempDir('mission-agent-store-');
  const token = 'agent-token-' + crypto.randomBytes(12).toString('hex');
  const child = spawn(bin, [store, '--token', token, ...extraArgs], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  children.add(child);
  const lines = jsonLines(child, 'dashboard_agent');
  const hello = await lines.next(60000);
  if (!hello.url) throw new Error('dashboard_agent did not print its url: ' + JSON.stringify(hello));
  let chain = Promise.resolve();
  const agent = {
    url: hello.url.replace(/\/$/, ''),
    token: hello.token || token,
    hello,
    // Sends one command and waits for its answer; commands are serialised.
    cmd(line, timeoutMs = 30000) {
      const run = chain.then(() => {
        child.stdin.write(line + '\n');
        return lines.next(timeoutMs);
      });
      chain = run.catch(() => {});
      return run;
    },
    async stop() {
      if (child.exitCode !== null) return;
      try { await Promise.race([agent.cmd('quit', 5000), new Promise((r) => setTimeout(r, 5000))]); } catch (_) { /* killed below */ }
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  return agent;
}

function run(bin, args, name, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} timed out`)); }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      children.delete(child);
      if (code === 0) resolve(out); else reject(new Error(`${name} exited ${code}: ${err}`));
    });
  });
}

// Writes a store with `threads` simulated threads (examples/store_fixture.rs).
// `extraArgs`: e.g. ['--advice'] (the recommendations' and audit trail's planted data).
async function buildStore(threads, extraArgs = []) {
  const dir = tempDir('mission-store-');
  const started = Date.now();
  await run(binary('MISSION_STORE_FIXTURE'), [dir, String(threads), ...extraArgs], 'store_fixture', 15 * 60000);
  return { dir, buildMs: Date.now() - started };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// `mission-ctl dashboard <store> --addr 127.0.0.1:PORT --token T`, ready once /healthz answers.
async function startCtlDashboard(store, token) {
  const bin = binary('MISSION_CTL');
  const port = await freePort();
  const child = spawn(bin, ['dashboard', store, '--addr', `127.0.0.1:${port}`, '--token', token], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  child.stdout.resume();
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mission-ctl dashboard exited ${child.exitCode}: ${stderr}`);
    try {
      const r = await fetch(url + '/healthz');
      if (r.ok) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('mission-ctl dashboard did not come up: ' + stderr);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    token,
    stop() { if (child.exitCode === null) child.kill('SIGTERM'); },
  };
}

// GET a JSON API route with the token, as the page would.
async function apiGet(server, route) {
  const r = await fetch(server.url + route, { headers: { Authorization: 'Bearer ' + server.token } });
  if (!r.ok) throw new Error(`${route}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

function quantile(values, q) {
  if (!values.length) return NaN;
  const s = values.slice().sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}

function writeOut(name, data) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, name);
  fs.writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data, null, 2) + '\n');
  return file;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = {
  OUT, launchBrowser, newPage, startAgent, buildStore, startCtlDashboard, apiGet, quantile, writeOut, sleep, tempDir,
};
