// Browser test of the live command board (engine/board) against a running
// zonecall server with the embedded Jincheng demo roster. See README.md.
//
// stdout is the control channel to the harness: the script prints exactly one
// line, "RESTART", when it wants the server restarted, and then waits for a
// line "RESTARTED" on stdin. Everything else goes to stderr.
//
// env: ZONECALL_URL (http://127.0.0.1:PORT), CHROMIUM (/usr/bin/chromium),
//      ARTIFACTS (screenshot dir, ./artifacts), SKIP_RESTART=1 (no harness).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const BASE = (process.env.ZONECALL_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS || 'artifacts';
const WAIT_MS = 10_000;
// The grid worker's board is given two servers: a standby, faked by the
// test's WebSocket routing (no engine can be one without PostgreSQL), then
// the real server, which the standby names as its leader.
const REAL_WS = new URL(BASE.replace(/^http/, 'ws') + '/v1/ws').href;
const FAKE_STANDBY = 'ws://127.0.0.1:9/v1/ws';
const FAKE_TURNED = 'ws://127.0.0.1:7/v1/ws';   // says leader at Hello, refuses writes as a standby

const log = (...a) => console.error('[board_test]', ...a);
let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  const file = path.join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
}

// Every wait names what it waited for, so a failure reads as a sentence.
async function see(page, selector, what, state = 'visible') {
  try {
    return await page.waitForSelector(selector, { state, timeout: WAIT_MS });
  } catch {
    throw new Error(`${what}: "${selector}" not ${state} within ${WAIT_MS / 1000} s`);
  }
}
async function until(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 100 });
  } catch (e) {
    const timedOut = e && e.name === 'TimeoutError';
    throw new Error(`${what}: ${timedOut ? `not true within ${WAIT_MS / 1000} s` : e.message}`);
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(what);
}

// One request on a fresh WebSocket opened from the page (Node 20 has no
// global WebSocket): Hello with `token`, then `body`; resolves to the reply.
async function sideRequest(page, token, body) {
  return page.evaluate(({ token, body, waitMs }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`);
    const helloId = String(Date.now() * 1000 + Math.floor(Math.random() * 1000));
    const bodyId = String(Number(helloId) + 1);
    const timer = setTimeout(() => { ws.close(); reject(new Error('side socket: no answer')); }, waitMs);
    ws.onerror = () => { clearTimeout(timer); reject(new Error('side socket failed to connect')); };
    ws.onopen = () => ws.send(JSON.stringify({ requestId: helloId, hello: { token } }));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.requestId === helloId) {
        if (!m.welcome) { clearTimeout(timer); ws.close(); reject(new Error(`side Hello: ${e.data}`)); return; }
        ws.send(JSON.stringify({ requestId: bodyId, ...body }));
      } else if (m.requestId === bodyId) {
        clearTimeout(timer); ws.close(); resolve(m);
      }
    };
  }), { token, body, waitMs: WAIT_MS });
}

async function report(page, location) {
  const reply = await sideRequest(page, 'demo-z1-grid-1',
    { report: { zoneId: 'Z1', category: 'sanitation', location, description: 'board test' } });
  expect(reply.ack && reply.ack.incidentId, `Report was not acknowledged: ${JSON.stringify(reply)}`);
  log(`reported incident ${reply.ack.incidentId} at seq ${reply.ack.seq}`);
  return reply.ack;
}

async function signIn(browser, token, pageErrors, beforeLoad = async () => {}, query = '') {
  // bypassCSP: the server's Content-Security-Policy forbids eval, which
  // Playwright's waitForFunction uses; the board itself never needs it.
  // The browser in another zone than the site's (Asia/Shanghai): the board
  // must show the site's time, not the browser's.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, bypassCSP: true,
                                             timezoneId: 'America/New_York' });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${token}: ${e.message}`));
  await beforeLoad(page);
  await page.goto(BASE + '/' + query);
  await see(page, '#conn[data-state="signed-out"]', `${token}: signed-out indicator before sign-in`);
  await page.fill('#token', token);
  await page.click('#sign-in');
  await see(page, '#conn[data-state="connected"]', `${token}: connected after sign-in`);
  return page;
}

// Resolves with the next stdin line equal to `word`.
function readLine(word) {
  const rl = createInterface({ input: process.stdin });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { rl.close(); reject(new Error(`no "${word}" on stdin within ${WAIT_MS / 1000} s`)); }, WAIT_MS);
    // resolve before close: close() emits 'close' at once, which would reject.
    rl.on('line', (line) => { if (line.trim() === word) { clearTimeout(timer); resolve(); rl.close(); } });
    rl.on('close', () => { clearTimeout(timer); reject(new Error(`stdin closed before "${word}"`)); });
  });
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const pageErrors = [];
  const pages = [];
  try {
    // 1. The sign-in form, the language toggle, sign-in as a Z1 grid worker, the zone map.
    log('step 1: sign in as demo-z1-grid-1');
    const probe = await (await browser.newContext({ bypassCSP: true })).newPage();
    pages.push(probe);
    await probe.goto(BASE + '/');
    await see(probe, '#token', 'token input');
    expect(await probe.getAttribute('html', 'lang') === 'zh-CN', 'the page does not default to zh-CN');
    const zhLabel = await probe.textContent('#sign-in');
    await probe.click('#lang');
    await until(probe, () => document.documentElement.lang === 'en', null, 'language toggle to English');
    expect(await probe.textContent('#sign-in') !== zhLabel, 'the sign-in button did not change language');
    await probe.click('#lang');
    await until(probe, () => document.documentElement.lang === 'zh-CN', null, 'language toggle back to Chinese');
    await probe.fill('#token', 'demo-nobody');
    await probe.click('#sign-in');
    await see(probe, '#status [data-kind="error"]', 'the refusal of an unknown token in the status area');
    await until(probe, () => [...document.querySelectorAll('#status [data-kind="error"]')]
      .some((p) => p.textContent.includes('UNAUTHENTICATED')), null, 'the status area naming UNAUTHENTICATED');
    await see(probe, '#conn[data-state="signed-out"]', 'signed out after an unknown token');
    await shot(probe, 'sign-in-refused');
    await probe.context().close();
    pages.pop();

    // The grid worker's sockets go through Playwright's WebSocket routing, so
    // step 5 can hold its reconnects back (the route must exist before the page loads).
    const sockets = { hold: false, standbyHellos: 0 };
    const grid = await signIn(browser, 'demo-z1-grid-1', pageErrors, (page) =>
      page.routeWebSocket(/\/v1\/ws$/, (ws) => {
        if (ws.url() === FAKE_STANDBY) {
          ws.onMessage((raw) => {   // a standby: Welcome says so and names the leader; the rest is refused
            const m = JSON.parse(raw);
            if (m.hello) sockets.standbyHellos += 1;
            ws.send(JSON.stringify(m.hello
              ? { requestId: m.requestId, welcome: { staffId: 'z1-grid-1', standby: true, leaderUrl: BASE.replace(/^http/, 'ws') } }
              : { requestId: m.requestId, error: { code: 'UNAVAILABLE', message: 'standby: the leader is elsewhere' } }));
          });
        } else if (sockets.hold) ws.close({ code: 1013, reason: 'held by the test' });
        else ws.connectToServer();   // relays both ways, closes included
      }), `?servers=${encodeURIComponent(`${FAKE_STANDBY},${REAL_WS}`)}`);
    pages.push(grid);
    // It tried the standby first, was sent on to the leader, and says where it is.
    expect(sockets.standbyHellos === 1, `the standby was asked ${sockets.standbyHellos} times, not once`);
    await until(grid, (real) => document.querySelector('#server')?.dataset.server === real, REAL_WS,
      'the top bar naming the leader the board is connected to');
    await until(grid, (fake) => [...document.querySelectorAll('#status [data-kind="info"]')]
      .some((p) => p.textContent.includes(fake)), FAKE_STANDBY, 'the status area naming the standby it left');
    const siteHour = new Intl.DateTimeFormat('en-GB', { hour: 'numeric', hourCycle: 'h23', timeZone: 'Asia/Shanghai' });
    await until(grid, (hours) => {
      const shown = document.querySelector('#clock')?.textContent || '';
      return /GMT\+8/.test(shown) && hours.some((h) => new RegExp(`(^|\\D)0?${h}:\\d\\d:\\d\\d`).test(shown));
    }, [0, 60000].map((ahead) => Number(siteHour.format(new Date(Date.now() + ahead)))),
    'the clock in site time (Asia/Shanghai, GMT+8), not the browser\'s (New York)');
    const boxes = {};
    for (let i = 1; i <= 9; i += 1) {
      const tile = await see(grid, `[data-zone="Z${i}"][data-sla]`, `zone tile Z${i}`);
      boxes[i] = await tile.boundingBox();
      const sla = await tile.getAttribute('data-sla');
      expect(['ok', 'near', 'breached', 'none'].includes(sla), `zone Z${i} has data-sla="${sla}"`);
    }
    // docs/topology.md: row-major 3 × 3, Z1 top-left.
    const row = (i) => Math.floor((i - 1) / 3), col = (i) => (i - 1) % 3;
    for (let i = 1; i <= 9; i += 1) {
      for (let j = 1; j <= 9; j += 1) {
        if (row(i) === row(j) && col(i) < col(j)) expect(boxes[i].x < boxes[j].x && Math.abs(boxes[i].y - boxes[j].y) < 2, `Z${i} is not left of Z${j}`);
        if (col(i) === col(j) && row(i) < row(j)) expect(boxes[i].y < boxes[j].y && Math.abs(boxes[i].x - boxes[j].x) < 2, `Z${i} is not above Z${j}`);
      }
    }
    await shot(grid, 'signed-in');

    // 2. An incident reported elsewhere appears live, with ticking countdowns.
    log('step 2: a new incident appears with countdowns');
    const first = await report(grid, 'C1 building 3 (board test 1)');
    const inc1 = `[data-incident="${first.incidentId}"]`;
    await see(grid, `${inc1}[data-state="REPORTED"]`, 'the reported incident on the board');
    const countdown = `${inc1} [data-countdown="discover"]`;
    await until(grid, (sel) => /^\d+:\d\d$/.test(document.querySelector(sel)?.textContent || ''), countdown, 'a discover countdown like 0:59');
    for (const stage of ['respond', 'resolve']) await see(grid, `${inc1} [data-countdown="${stage}"]`, `${stage} countdown`);
    const before = await grid.textContent(countdown);
    await until(grid, ([sel, old]) => (document.querySelector(sel)?.textContent ?? old) !== old, [countdown, before], 'the discover countdown ticking');
    await see(grid, '[data-zone="Z1"]:not([data-sla="none"])', 'zone Z1 coloured by its open incident');
    expect(await grid.isHidden(`${inc1} [data-action="zone-call"]`), 'a grid worker is offered a zone call');
    await shot(grid, 'incident-reported');

    // 3. Discover from the board.
    log('step 3: discover');
    await grid.click(`${inc1} [data-action="discover"]`);
    await see(grid, `${inc1}[data-state="DISCOVERED"]`, 'the incident moved to DISCOVERED');
    await see(grid, `${inc1} [data-countdown="discover"][data-level="met"]`, 'the discover clock shown as met');
    await shot(grid, 'discovered');
    await grid.reload();   // the token stays in sessionStorage
    await see(grid, '#conn[data-state="connected"]', 'connected again after a reload, without signing in');
    await see(grid, `${inc1}[data-state="DISCOVERED"]`, 'the incident after the reload');

    // 4. The zone chief calls urban-management; the department desk accepts and reports on site.
    log('step 4: zone call by demo-z1-chief');
    const chief = await signIn(browser, 'demo-z1-chief', pageErrors);
    pages.push(chief);
    await see(chief, inc1, 'the incident on the zone chief\'s board');
    await chief.fill(`${inc1} [data-field="dept"]`, 'no-such-department');
    await chief.click(`${inc1} [data-action="zone-call"]`);
    await see(chief, '#status [data-kind="error"]', 'the server\'s refusal of an unknown department');
    await until(chief, () => [...document.querySelectorAll('#status [data-kind="error"]')]
      .some((p) => p.textContent.includes('NOT_FOUND')), null, 'the status area naming NOT_FOUND');
    await chief.fill(`${inc1} [data-field="dept"]`, 'urban-management');
    await chief.fill(`${inc1} [data-field="reason"]`, 'needs a collection truck');
    await chief.click(`${inc1} [data-action="zone-call"]`);
    const pending = `${inc1} [data-call][data-department="urban-management"][data-call-state="pending"]`;
    await see(chief, `${pending} [data-countdown="accept"]`, 'the pending call with its acceptance countdown');
    await until(chief, (sel) => /^\d+:\d\d$/.test(document.querySelector(sel)?.textContent || ''),
      `${pending} [data-countdown="accept"]`, 'an acceptance countdown like 4:59');
    await see(grid, pending, 'the pending call on the grid worker\'s board too');
    await shot(chief, 'zone-call');

    log('step 4b: demo-dept-urban-management accepts');
    const dept = await signIn(browser, 'demo-dept-urban-management', pageErrors);
    pages.push(dept);
    await see(dept, `${inc1} [data-action="accept"]:not([disabled])`, 'the accept button on the department desk');
    expect(await dept.isHidden(`${inc1} [data-action="discover"]`), 'a department desk is offered discover');
    await dept.click(`${inc1} [data-action="accept"]`);
    const accepted = `${inc1} [data-call][data-department="urban-management"][data-call-state="accepted"]`;
    await see(dept, accepted, 'the call accepted on the department desk');
    await see(chief, accepted, 'the acceptance on the zone chief\'s board');
    await see(dept, `${accepted} [data-countdown="on-site"]`, 'the on-site countdown');
    await shot(dept, 'department-accepted');
    await dept.click(`${inc1} [data-action="on-site"]`);
    await see(dept, `${inc1} [data-call][data-call-state="on-site"]`, 'the department on site');
    await shot(dept, 'department-on-site');

    // 5. Server restart: the board shows reconnecting, then resumes from its cursor.
    log('step 5: server restart');
    if (process.env.SKIP_RESTART === '1') {
      log('SKIP_RESTART=1: restart step skipped');
    } else {
      await grid.evaluate(() => {
        const conn = document.querySelector('#conn');
        window.connLog = [conn.dataset.state];
        new MutationObserver(() => window.connLog.push(conn.dataset.state))
          .observe(conn, { attributes: true, attributeFilter: ['data-state'] });
      });
      // Hold the board's reconnects until an incident is committed, so it can
      // only learn of it from the backlog of Subscribe{afterSeq: cursor}.
      sockets.hold = true;
      const cursorBefore = await grid.evaluate(() => window.zonecallBoard.cursor);
      const restarted = readLine('RESTARTED');
      process.stdout.write('RESTART\n');
      await see(grid, '#conn[data-state="reconnecting"]', 'the reconnecting indicator while the server is down');
      await shot(grid, 'reconnecting');
      await restarted;
      const second = await report(chief, 'C2 building 1 (board test 2)');
      sockets.hold = false;
      await see(grid, '#conn[data-state="connected"]', 'connected again after the restart');
      expect(await grid.evaluate(() => window.zonecallBoard.server) === REAL_WS, 'the board is not back on the leader');
      const states = await grid.evaluate(() => window.connLog);
      const r = states.indexOf('reconnecting');
      expect(r >= 0 && states.indexOf('connected', r) > r, `indicator went ${states.join(' -> ')}`);
      const inc2 = `[data-incident="${second.incidentId}"]`;
      await see(grid, `${inc2}[data-state="REPORTED"]`, 'the incident reported while the board was away');
      await see(grid, `${inc1}[data-state="DISCOVERED"]`, 'the earlier incident still on the board');
      await see(grid, `${inc2} [data-countdown="discover"]`, 'the new incident\'s countdown');
      const subscribes = await grid.evaluate(() => window.zonecallBoard.subscribes);
      const resumedFrom = subscribes[subscribes.length - 1];
      expect(subscribes.length >= 2 && resumedFrom >= cursorBefore && resumedFrom < Number(second.seq),
        `the board resubscribed after seq ${resumedFrom}; expected its cursor ${cursorBefore} (or later, `
        + `but before the new incident's seq ${second.seq}); Subscribes: ${subscribes}`);
      log(`resumed from cursor ${resumedFrom}; incident ${second.incidentId} (seq ${second.seq}) came from the backlog`);
      await shot(grid, 'reconnected');
    }

    // 6. Resolve with an outcome: the incident leaves the open list.
    log('step 6: resolve');
    await grid.selectOption(`${inc1} [data-field="outcome"]`, 'SETTLED');
    await grid.click(`${inc1} [data-action="resolve"]`);
    await see(grid, inc1, 'the resolved incident leaving the board', 'detached');
    await shot(grid, 'resolved');

    // 7. A server that turns standby after the sign-in refuses a write with
    // UNAVAILABLE "standby: ...": the board takes the write to the next
    // server, under its request id, and shows that server's Ack.
    log('step 7: a write refused by a standby goes to the leader');
    const turned = { refused: [], ids: [], resentIds: [] };
    const desk = await signIn(browser, 'demo-z1-grid-1', pageErrors, (page) =>
      page.routeWebSocket(/\/v1\/ws$/, (ws) => {
        if (ws.url() !== FAKE_TURNED) {   // the leader: relayed, noting the reports it gets
          const server = ws.connectToServer();
          ws.onMessage((raw) => {
            const m = JSON.parse(raw);
            if (m.report) turned.resentIds.push(m.requestId);
            server.send(raw);
          });
          return;
        }
        ws.onMessage((raw) => {   // answered as a leader would, until a write comes
          const m = JSON.parse(raw);
          const id = m.requestId;
          if (m.hello) ws.send(JSON.stringify({ requestId: id, welcome: { staffId: 'z1-grid-1', name: 'Fake', role: 'GRID_WORKER', zoneId: 'Z1' } }));
          else if (m.subscribe) ws.send(JSON.stringify({ requestId: id, subscribed: { caughtUpSeq: m.subscribe.afterSeq } }));
          else if (m.listIncidents) ws.send(JSON.stringify({ requestId: id, incidents: {} }));
          else {
            turned.refused.push(Object.keys(m).find((k) => k !== 'requestId'));
            turned.ids.push(id);
            ws.send(JSON.stringify({ requestId: id, error: { code: 'UNAVAILABLE', message: 'standby: the leader is elsewhere' } }));
          }
        });
      }), `?servers=${encodeURIComponent(`${FAKE_TURNED},${REAL_WS}`)}`);
    pages.push(desk);
    expect(await desk.evaluate(() => window.zonecallBoard.server) === FAKE_TURNED, 'the board did not start on the first server');
    await desk.selectOption('#report-category', 'sanitation');
    await desk.fill('#report-location', 'C1 building 9 (board test 7)');
    await desk.click('[data-action="report"]');
    await until(desk, (real) => window.zonecallBoard.server === real, REAL_WS, 'the board on the leader after the refusal');
    await until(desk, () => [...document.querySelectorAll('#status [data-kind="info"]')]
      .some((p) => /已上报，事件 #\d+/.test(p.textContent)), null, 'the leader\'s Ack of the write the standby refused');
    expect(turned.refused.join() === 'report', `the standby was sent ${turned.refused.join() || 'nothing'}, not one report`);
    expect(turned.resentIds.length === 1 && turned.resentIds[0] === turned.ids[0],
      `the leader got the report under ${turned.resentIds.join() || 'no id'}, not its first id ${turned.ids[0]}`);
    await shot(desk, 'write-taken-to-the-leader');

    const errors = await grid.$$eval('#status [data-kind="error"]', (ps) => ps.map((p) => p.textContent));
    expect(errors.length === 0, `errors in the status area: ${errors.join(' | ')}`);
    expect(pageErrors.length === 0, `uncaught errors in the page: ${pageErrors.join(' | ')}`);
    log('PASS');
  } catch (e) {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: path.join(ARTIFACTS, `failure-${i + 1}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  log('FAIL:', e.message);
  process.exit(1);
});
