// zonecall live command board: a plain script, no build step. The engine serves
// it at /board.js; it speaks the JSON form of the protocol (docs/protocol.md)
// over the WebSocket /v1/ws of the host that served the page, or of the
// engines a `?servers=` list names (docs/protocol.md §1, several engines).
'use strict';
(() => {

// ---- i18n -------------------------------------------------------------------
// Every UI string, as [zh-CN, en]. Terms follow the glossary in docs/design.md: 战区 zone, 发现/响应/处置
// for the stages, 战区呼叫 zone call, 科室报到 / 限时接单 the department's answer.
const I18N = {
  title: ['锦城社区 · 1分钟发现 5分钟响应 15分钟处置', 'Jincheng Community · 1/5/15 command board'],
  langButton: ['English', '中文'],
  token: ['登录令牌', 'Sign-in token'],
  signIn: ['登录', 'Sign in'],
  signOut: ['退出', 'Sign out'],
  signInHint: ['演示令牌形如 demo-z1-grid-1、demo-z1-chief、demo-command、demo-dept-urban-management。',
    'Demo tokens look like demo-z1-grid-1, demo-z1-chief, demo-command, demo-dept-urban-management.'],
  'conn.connected': ['已连接', 'Connected'], 'conn.reconnecting': ['重连中…', 'Reconnecting…'],
  'conn.connecting': ['连接中…', 'Connecting…'], 'conn.signed-out': ['未登录', 'Signed out'],
  serverTime: ['服务器时间', 'Server time'],
  zones: ['战区态势', 'Zones'],
  zoneFilterHint: ['点击战区只看该战区的事件，再次点击取消。', 'Click a zone to show only its incidents; click again to show all.'],
  filterNote: ['仅显示 {zone}', 'Showing {zone} only'],
  openIncidents: ['待处置事件', 'Open incidents'],
  noIncidents: ['暂无待处置事件', 'No open incidents'],
  statusTitle: ['消息', 'Messages'],
  openCount: ['{n} 件', '{n} open'],
  'sla.ok': ['正常', 'On time'],
  'sla.near': ['临近时限', 'Near deadline'],
  'sla.breached': ['已超时', 'Breached'],
  'sla.none': ['无事件', 'No incidents'],
  'stage.discover': ['发现', 'Discover'],
  'stage.respond': ['响应', 'Respond'],
  'stage.resolve': ['处置', 'Resolve'],
  'state.REPORTED': ['已上报', 'Reported'], 'state.DISCOVERED': ['已发现', 'Discovered'],
  'state.RESPONDING': ['响应中', 'Responding'], 'state.RESOLVED': ['已处置', 'Resolved'],
  met: ['✓ 按时', '✓ on time'],
  metLate: ['✓ 超时 {t}', '✓ late by {t}'],
  'action.discover': ['发现', 'Discover'],
  'action.respond': ['响应', 'Respond'],
  'action.resolve': ['处置完成', 'Resolve'],
  'action.zone-call': ['战区呼叫', 'Zone call'],
  'action.accept': ['限时接单', 'Accept'],
  'action.on-site': ['科室报到（到场）', 'On site'],
  'action.decline': ['退回', 'Decline'],
  'action.report': ['上报事件', 'Report'],
  'action.duty': ['在岗状态', 'Duty'],
  'action.hello': ['登录', 'Sign in'],
  'action.get': ['读取事件', 'Read incident'],
  'action.list': ['读取事件列表', 'List incidents'],
  'action.subscribe': ['订阅', 'Subscribe'],
  'duty.on': ['在岗 ✓（点击下岗）', 'On duty ✓ (click to go off)'],
  'duty.off': ['不在岗（点击上岗）', 'Off duty (click to go on)'],
  listSep: ['、', ', '],
  note: ['备注', 'Note'],
  department: ['科室编号', 'Department id'],
  callReason: ['呼叫原因', 'Reason for the call'],
  declineReason: ['退回原因（必填）', 'Reason to decline (required)'],
  location: ['地点', 'Location'],
  description: ['描述', 'Description'],
  'outcome.': ['处置结果（可选）', 'Outcome (optional)'], 'outcome.SETTLED': ['已解决 / 调解成功', 'Settled'],
  'outcome.UNSETTLED': ['未达成一致', 'Unsettled'], 'outcome.REFERRED': ['已移交', 'Referred'],
  'cat.': ['选择事件类别', 'Choose a category'],
  'severity.': ['类别默认等级', "Category's default severity"], 'severity.LOW': ['低', 'Low'],
  'severity.NORMAL': ['一般', 'Normal'], 'severity.MAJOR': ['较大', 'Major'],
  'severity.CRITICAL': ['紧急', 'Critical'],
  holder: ['责任方：{h}', 'Held by {h}'],
  mutualAid: ['互助战区：{z}', 'Mutual aid: {z}'],
  callTitle: ['呼叫 {n} · {d}', 'Call {n} · {d}'],
  callAuto: ['（自动）', ' (automatic)'],
  callAccept: ['限时接单', 'accept within'],
  callOnSite: ['到场时限', 'on site within'],
  'call.accepted': ['已接单', 'accepted'],
  'call.on-site': ['已到场', 'on site'],
  'call.declined': ['已退回', 'declined'],
  'call.superseded': ['已由呼叫 {next} 替代', 'superseded by call {next}'],
  acked: ['{what} 已确认（事件 #{id}，序号 {seq}）', '{what} confirmed (incident #{id}, seq {seq})'],
  ackDuty: ['在岗状态已记录', 'Duty recorded'],
  reported: ['已上报，事件 #{id}', 'Reported as incident #{id}'],
  queued: ['{what} 将在重连后发送', '{what} will be sent after reconnecting'],
  needDept: ['请填写科室编号', 'Enter a department id'],
  needReason: ['退回需要原因', 'A decline needs a reason'],
  badToken: ['令牌无效，请重新登录', 'Unknown token: sign in again'],
  standby: ['{url} 是备用服务器，转至 {next}', '{url} is a standby; trying {next}'],
  serverTitle: ['当前连接的服务器', 'The server this board is connected to'],
  signsInAt: ['令牌将发送至：{list}', 'Your token is sent to: {list}'],
  timelineReset: ['服务器时间线已更换，看板已重新加载', "The server's timeline changed: the board reloaded"],
  alert: ['警报 #{id}：{text}', 'Alert #{id}: {text}'],
  'alertReason.NEW': ['新事件', 'new incident'], 'alertReason.WARNING': ['临近时限', 'near deadline'],
  'alertReason.BREACHED': ['已超时', 'breached'], 'alertReason.ESCALATED': ['逐级上报', 'escalated'],
  'alertReason.UPDATED': ['已更新', 'updated'], 'alertReason.CALLED': ['战区呼叫', 'zone call'],
  'role.ZONE_CHIEF': ['战区"一把手"', 'Zone chief'], 'role.GRID_WORKER': ['网格员', 'Grid worker'],
  'role.PATROL': ['综治队员', 'Patrol'], 'role.COMMUNITY_WORKER': ['社区工作者', 'Community worker'],
  'role.BUILDING_LEADER': ['楼栋长', 'Building leader'], 'role.VOLUNTEER': ['志愿者', 'Volunteer'],
  'role.COMMUNITY_COMMAND': ['社区党委（指挥）', 'Community command'],
  'role.DEPARTMENT': ['街道科室', 'Street-office department'], 'role.AUDITOR': ['考核员', 'Auditor'],
  'role.REPORTER': ['居民上报', 'Reporter'], 'role.STREET_OFFICE': ['街道值班', 'Street office'],
  'zone.Z1': ['一战区', 'Zone 1'], 'zone.Z2': ['二战区', 'Zone 2'], 'zone.Z3': ['三战区', 'Zone 3'],
  'zone.Z4': ['四战区', 'Zone 4'], 'zone.Z5': ['五战区', 'Zone 5'], 'zone.Z6': ['六战区', 'Zone 6'],
  'zone.Z7': ['七战区', 'Zone 7'], 'zone.Z8': ['八战区', 'Zone 8'], 'zone.Z9': ['九战区', 'Zone 9'],
  'area.Z1': ['西北 · 院落 C1–C2', 'North-west · C1–C2'], 'area.Z2': ['北 · 院落 C3', 'North · C3'],
  'area.Z3': ['东北 · 楼宇 B01–B05', 'North-east · B01–B05'], 'area.Z4': ['西 · 院落 C4', 'West · C4'],
  'area.Z5': ['中 · 院落 C5–C6', 'Centre · C5–C6'], 'area.Z6': ['东 · 楼宇 B06–B10', 'East · B06–B10'],
  'area.Z7': ['西南 · 院落 C7', 'South-west · C7'], 'area.Z8': ['南 · 院落 C8', 'South · C8'],
  'area.Z9': ['东南 · 楼宇 B11–B14', 'South-east · B11–B14'],
  'cat.fire': ['火情', 'Fire'], 'cat.medical_emergency': ['急症救助', 'Medical emergency'],
  'cat.building_hazard': ['房屋设施险情', 'Building hazard'], 'cat.public_safety': ['治安隐患', 'Public safety'],
  'cat.dispute': ['矛盾纠纷', 'Dispute'], 'cat.neighbour_noise': ['邻里噪音', 'Neighbour noise'],
  'cat.sanitation': ['环境卫生', 'Sanitation'], 'cat.facility_repair': ['设施报修', 'Facility repair'],
  'cat.elderly_care': ['养老助老', 'Elderly care'], 'cat.road_obstruction': ['占道阻塞', 'Road obstruction'],
  'cat.illegal_construction': ['违章搭建', 'Illegal construction'],
  'cat.business_complaint': ['商户投诉', 'Business complaint'], 'cat.flooding': ['积水内涝', 'Flooding'],
  'dept.urban-management': ['城市管理和综合执法科', 'Urban Management and Law Enforcement'],
  'dept.public-safety': ['平安建设办公室（综治）', 'Public Safety and Comprehensive Governance'],
  'dept.emergency': ['应急管理办公室', 'Emergency Management'],
  'dept.civil-affairs': ['民政和社会事务科', 'Civil and Social Affairs'],
  'dept.community-governance': ['社区发展治理科', 'Community Development and Governance'],
  'dept.market-supervision': ['市场监管联络', 'Market Supervision Liaison'],
  'dept.convenience-services': ['便民服务中心', 'Convenience Services'],
};
const LANGS = ['zh-CN', 'en'];
let lang = sessionStorage.getItem('zonecall.lang') === 'en' ? 'en' : 'zh-CN';

// t('zone.Z1') -> 一战区; an unknown key shows its id (a zone or department the
// default topology does not know still reads sensibly).
function t(key, vars = {}) {
  const entry = I18N[key];
  let s = entry ? entry[LANGS.indexOf(lang)] : key.slice(key.indexOf('.') + 1);
  for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, v);
  return s;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  $('#lang').textContent = t('langButton');
  for (const o of $('#departments').options) o.label = t('dept.' + o.value);
  setConn(state.conn);
  const note = $('#servers-note');   // a ?servers= list: say where a token would go
  note.hidden = SERVERS.length === 1 && SERVERS[0] === OWN_SERVER;
  note.textContent = t('signsInAt', { list: SERVERS.join(t('listSep')) });
  render();
}

// ---- state --------------------------------------------------------------------
// The map and the names below are the embedded Jincheng default
// (docs/topology.md); the protocol carries ids only.
const ZONES = [['Z1', 1, 1], ['Z2', 1, 2], ['Z3', 1, 3], ['Z4', 2, 1], ['Z5', 2, 2],
  ['Z6', 2, 3], ['Z7', 3, 1], ['Z8', 3, 2], ['Z9', 3, 3]];
const CATEGORIES = ['fire', 'medical_emergency', 'building_hazard', 'public_safety', 'dispute',
  'neighbour_noise', 'sanitation', 'facility_repair', 'elderly_care', 'road_obstruction',
  'illegal_construction', 'business_complaint', 'flooding'];
const DEPARTMENTS = ['urban-management', 'public-safety', 'emergency', 'civil-affairs',
  'community-governance', 'market-supervision', 'convenience-services'];
const ZONE_ROLES = new Set(['ZONE_CHIEF', 'GRID_WORKER', 'PATROL', 'COMMUNITY_WORKER',
  'BUILDING_LEADER', 'VOLUNTEER']);
const STAGES = ['discover', 'respond', 'resolve'];
const LEVELS = ['none', 'ok', 'near', 'breached'];   // worst last
const NEAR_FRACTION = 0.2;  // without the incident's warn times: near when < 20 % of the budget is left

const state = {
  token: sessionStorage.getItem('zonecall.token') || '',
  me: null,               // the latest Welcome
  conn: 'signed-out',
  everConnected: false,
  offsetMs: 0,            // server clock minus local clock
  cursor: null,           // highest timeline seq received (events, Subscribed); null before the first Welcome
  incidents: new Map(),   // incident id -> { view: IncidentView, asOf: seq the view is as of }
  warn: new Map(),        // incident id -> [discoverWarnMs, respondWarnMs, resolveWarnMs] from its `reported` event
  filterZone: '',
  subscribes: [],         // afterSeq of every Subscribe sent (read by the browser test)
};

// ---- servers ----------------------------------------------------------------
// `?servers=ws://a:8080/v1/ws,wss://b/v1/ws`: the engines to try, in order;
// without it, the one that served the page. URLs are compared normalised
// (no path means /v1/ws; host case and default ports do not count).
function serverUrl(text) {
  try {
    const u = new URL(text.trim());
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return null;
    if (u.pathname === '/') u.pathname = '/v1/ws';
    return u.href;
  } catch { return null; }
}
const OWN_SERVER = serverUrl(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`);
const SERVERS = (() => {
  const listed = (new URLSearchParams(location.search).get('servers') || '').split(',').map(serverUrl).filter(Boolean);
  return [...new Set(listed.length ? listed : [OWN_SERVER])];
})();
// After a Welcome: a leader keeps this server; a standby sends the board to
// the leader_url it names if that is listed (the token goes only where the
// page's address said), else to the next listed server.
function nextAfterWelcome(w) {
  if (!w.standby) return sock.index;
  const leader = w.leaderUrl ? serverUrl(w.leaderUrl) : null;
  const i = leader ? SERVERS.indexOf(leader) : -1;
  return i >= 0 && i !== sock.index ? i : (sock.index + 1) % SERVERS.length;
}
const serverNow = () => Date.now() + state.offsetMs;
// Wall-clock times are the site's (Welcome.timeZone, an IANA name), not the
// browser's, labelled with the zone's offset, e.g. "09:15:02 GMT+8".
function siteTime(ms) {
  const zone = state.me && state.me.timeZone;
  const options = { hour12: false, timeZoneName: 'short' };
  try {
    return new Date(ms).toLocaleTimeString(lang, zone ? { ...options, timeZone: zone } : options);
  } catch (e) {  // a zone this browser does not know: its own, labelled
    return new Date(ms).toLocaleTimeString(lang, options);
  }
}
// Read-only view for tests and the console.
window.zonecallBoard = { get cursor() { return state.cursor; }, get subscribes() { return [...state.subscribes]; },
  get server() { return SERVERS[sock.index]; }, servers: SERVERS };

// Applies a view unless a newer one is already shown: replies and pushes can
// arrive out of order, so every view carries the seq it is as of.
function applyView(view, asOf) {
  const id = view.incidentId;
  const held = state.incidents.get(id);
  if (held && held.asOf > asOf) return;
  delete view.timeline;
  state.incidents.set(id, { view, asOf });
  scheduleRender();
}

function rememberWarnTimes(id, reported) {
  state.warn.set(id, [reported.discoverWarnMs, reported.respondWarnMs, reported.resolveWarnMs].map(Number));
}

function resetBoard() {
  state.incidents.clear(); state.warn.clear(); state.cursor = null;
  refresh.dirty.clear(); refresh.inflight.clear();
  for (const row of rows.values()) row.remove();
  rows.clear();
}

// ---- protocol / socket --------------------------------------------------------
// Back-off between tries: 200 ms doubling to 2 s, reset by a leader's Welcome.
const FIRST_BACKOFF_MS = 200, MOST_BACKOFF_MS = 2000;
const sock = { ws: null, ready: false, index: 0, backoffMs: FIRST_BACKOFF_MS, retryTimer: 0, helloSentAt: 0,
  lastId: 0, pending: new Map() };  // requestId -> { kind, write, msg, sent, incidentId, asOf }

// Ids must be unique per staff member across tabs and reconnects (protocol §4):
// time-based, with a random tail so two tabs of one person do not collide.
function nextRequestId() {
  sock.lastId = Math.max(sock.lastId + 1, Date.now() * 1000 + Math.floor(Math.random() * 1000));
  return String(sock.lastId);
}

// Reads need a live, signed-in socket and are simply dropped otherwise (they are
// asked again after the next Welcome). Writes wait in `pending` and are resent
// with their original request id, which the server answers at most once.
function request(body, info) {
  const requestId = nextRequestId();
  const entry = { ...info, msg: { requestId, ...body }, sent: false };
  if (!sock.ready && !entry.write) return;
  sock.pending.set(requestId, entry);
  if (sock.ready) { sock.ws.send(JSON.stringify(entry.msg)); entry.sent = true; }
  else status('info', t('queued', { what: t('action.' + entry.kind) }));
  scheduleRender();
}

function connect() {
  clearTimeout(sock.retryTimer);
  const url = SERVERS[sock.index];
  showServer(url);
  let ws;
  try { ws = new WebSocket(url); } catch { scheduleReconnect((sock.index + 1) % SERVERS.length); return; }
  sock.ws = ws; sock.ready = false;
  setConn('reconnecting');
  const openTimer = setTimeout(() => ws.close(), 5000);  // a hung handshake counts as a failed try
  ws.onopen = () => {
    clearTimeout(openTimer);
    const requestId = nextRequestId();
    sock.pending.set(requestId, { kind: 'hello' });
    sock.helloSentAt = Date.now();
    ws.send(JSON.stringify({ requestId, hello: { token: state.token } }));
  };
  ws.onmessage = (e) => { if (sock.ws === ws) onMessage(e.data); };
  ws.onclose = (e) => {
    clearTimeout(openTimer);
    if (sock.ws !== ws) return;   // a socket we already left (sign-out, a standby)
    forgetSocket();
    if (e.code === 1008 && /sign-in/.test(e.reason)) { signOut(t('badToken')); return; }
    if (state.token) scheduleReconnect((sock.index + 1) % SERVERS.length);
  };
}

// Writes stay pending, to be sent again with their ids; reads are asked again.
function forgetSocket() {
  sock.ws = null; sock.ready = false;
  for (const [id, p] of sock.pending) { if (p.write) p.sent = false; else sock.pending.delete(id); }
  for (const id of refresh.inflight) refresh.dirty.add(id);
  refresh.inflight.clear();
}

// This server is a standby: on to `next`, keeping what waits.
function leaveServer(next) {
  status('info', t('standby', { url: SERVERS[sock.index], next: SERVERS[next] }));
  const ws = sock.ws;
  forgetSocket();
  if (ws) ws.close(1000);
  scheduleReconnect(next);
}

function scheduleReconnect(next) {
  sock.index = next;
  setConn('reconnecting');
  showServer(SERVERS[next]);
  sock.retryTimer = setTimeout(connect, sock.backoffMs);
  sock.backoffMs = Math.min(sock.backoffMs * 2, MOST_BACKOFF_MS);
}

function onMessage(raw) {
  let m;
  try { m = JSON.parse(raw); } catch { status('error', 'bad JSON from server'); return; }
  const req = m.requestId ? sock.pending.get(m.requestId) : undefined;
  if (req) sock.pending.delete(m.requestId);
  if (m.welcome) onWelcome(m.welcome);
  else if (m.subscribed) onSubscribed(m.subscribed);
  else if (m.event) onEvent(m.event);
  else if (m.alert) onAlert(m.alert);
  else if (m.incidents) onIncidentList(m.incidents, req);
  else if (m.incident) onIncident(m.incident, req);
  else if (m.ack) onAck(m.ack, req);
  else if (m.error) onError(m.error, req);
  scheduleRender();
}

function onWelcome(w) {
  if (w.standby) { leaveServer(nextAfterWelcome(w)); return; }
  // The server's clock is the only clock: take the Welcome's time at the
  // midpoint of the Hello round trip.
  if (w.serverTimeMs) state.offsetMs = Number(w.serverTimeMs) - (sock.helloSentAt + Date.now()) / 2;
  state.me = w;
  sock.ready = true; sock.backoffMs = FIRST_BACKOFF_MS;
  const lastSeq = Number(w.lastSeq || 0);
  if (state.cursor !== null && lastSeq < state.cursor) {  // a fresh database behind the same address
    resetBoard();
    status('info', t('timelineReset'));
  }
  // First Welcome: the open incidents come from ListIncidents, the changes from
  // lastSeq on. Later ones: resume from the cursor, so nothing is missed.
  if (state.cursor === null) state.cursor = lastSeq;
  subscribe();
  listIncidents('0');
  for (const p of sock.pending.values()) {
    if (p.write && !p.sent) { sock.ws.send(JSON.stringify(p.msg)); p.sent = true; }
  }
  pumpRefresh();
  showBoard(true);
}

function subscribe() {
  state.subscribes.push(state.cursor);
  request({ subscribe: { afterSeq: String(state.cursor) } }, { kind: 'subscribe' });
}

function listIncidents(afterId) {
  // The list reflects at least everything up to the cursor at the time it is asked.
  request({ listIncidents: { afterIncidentId: afterId, limit: 500 } }, { kind: 'list', asOf: state.cursor });
}

function onSubscribed(s) {
  state.cursor = Math.max(state.cursor, Number(s.caughtUpSeq || 0));
  state.everConnected = true;
  setConn('connected');
}

function onEvent(e) {
  // Only events move the cursor: an alert can arrive before its event.
  state.cursor = Math.max(state.cursor, Number(e.seq));
  if (e.reported) rememberWarnTimes(e.incidentId, e.reported);
  if (e.incidentId) markDirty(e.incidentId);
}

function onAlert(a) {
  if (!a.incident) return;
  const id = a.incident.incidentId;
  if (!state.incidents.has(id)) markDirty(id);  // may not be readable: GetIncident decides
  applyView(a.incident, Number(a.seq));
  const text = a.reasonText || t('alertReason.' + a.reason);
  status(a.reason === 'UPDATED' ? 'info' : 'alert', t('alert', { id, text }));
}

function onIncidentList(list, req) {
  const views = list.incidents || [];
  for (const v of views) applyView(v, req ? req.asOf : 0);
  if (list.more && views.length) listIncidents(views[views.length - 1].incidentId);
}

function onIncident(view, req) {
  let asOf = 0;
  for (const e of view.timeline || []) {
    asOf = Math.max(asOf, Number(e.seq));
    if (e.reported) rememberWarnTimes(view.incidentId, e.reported);
  }
  applyView(view, asOf);
  if (req) refreshDone(req.incidentId);
}

function onAck(ack, req) {
  if (!req) return;
  if (req.kind === 'report') status('info', t('reported', { id: ack.incidentId }));
  else if (req.kind === 'duty') { state.me.onDuty = req.msg.setDuty.onDuty; status('info', t('ackDuty')); }
  else status('info', t('acked', { what: t('action.' + req.kind), id: ack.incidentId || '-', seq: ack.seq }));
}

function onError(err, req) {
  const kind = req ? req.kind : '';
  if (err.code === 'UNAVAILABLE' && /^standby:/.test(err.message || '') && req && req.msg && sock.ready) {
    // Not executed here: a write waits for the leader, under its id.
    if (req.write) sock.pending.set(req.msg.requestId, req);
    leaveServer((sock.index + 1) % SERVERS.length);
    return;
  }
  if (kind === 'get') {
    // Not readable (an alert about another zone) or gone: keep it off the board.
    refreshDone(req.incidentId);
    if (err.code === 'NOT_FOUND' || err.code === 'FORBIDDEN') { state.incidents.delete(req.incidentId); return; }
  }
  if (kind === 'subscribe') setTimeout(() => { if (sock.ready) subscribe(); }, 1000);
  const what = kind ? t('action.' + kind) + ' · ' : '';
  status('error', `${what}${err.code}: ${err.message || ''}`);
  if (kind === 'hello' && err.code === 'UNAUTHENTICATED') signOut(t('badToken'));
}

// GetIncident after every event: the server's view is the truth, and this
// keeps the board free of a second copy of the state machine. At most 8 reads
// in flight, one per incident at a time.
const refresh = { dirty: new Set(), inflight: new Set() };
function markDirty(id) { refresh.dirty.add(id); pumpRefresh(); }
function refreshDone(id) { refresh.inflight.delete(id); pumpRefresh(); }
function pumpRefresh() {
  if (!sock.ready) return;
  for (const id of refresh.dirty) {
    if (refresh.inflight.size >= 8) break;
    if (refresh.inflight.has(id)) continue;   // fetched again once this reply lands
    refresh.dirty.delete(id); refresh.inflight.add(id);
    request({ getIncident: { incidentId: id } }, { kind: 'get', incidentId: id });
  }
}

// ---- rendering ----------------------------------------------------------------
const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}
const rows = new Map();   // incident id -> row element, kept so inputs survive updates
let renderQueued = false;
function scheduleRender() {
  if (!renderQueued) { renderQueued = true; setTimeout(() => { renderQueued = false; render(); }, 0); }
}

function setConn(s) {
  state.conn = s;
  const c = $('#conn');
  c.dataset.state = s;
  c.textContent = t(s === 'reconnecting' && !state.everConnected ? 'conn.connecting' : 'conn.' + s);
}

// Which server the board uses (or is trying, while reconnecting).
function showServer(url) {
  const s = $('#server');
  s.dataset.server = url;
  s.textContent = new URL(url).host;
}

function status(kind, text) {
  const box = $('#status');
  const time = siteTime(serverNow());
  box.prepend(el('p', { 'data-kind': kind }, `${time} ${text}`));
  while (box.children.length > 12) box.lastChild.remove();
}

function showBoard(on) {
  $('#board').hidden = !on;
  $('#signin-panel').hidden = on;
  $('#sign-out').hidden = !on;
}

function fmtDuration(ms) {
  const s = Math.ceil(Math.abs(ms) / 1000);   // a second overdue shows as −0:01, never −0:00
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = String(s % 60).padStart(2, '0');
  return `${ms < 0 ? '−' : ''}${h ? `${h}:${String(m).padStart(2, '0')}` : m}:${sec}`;
}

// A clock's level: breached past its deadline, near past the warn time (the
// incident's own when known, else 80 % of the budget), ok otherwise.
function clockLevel(now, deadline, start, warnAt, breached) {
  if (breached || now > deadline) return 'breached';
  const warn = warnAt > 0 ? warnAt : deadline - (deadline - start) * NEAR_FRACTION;
  return now >= warn ? 'near' : 'ok';
}
const worse = (a, b) => (LEVELS.indexOf(a) >= LEVELS.indexOf(b) ? a : b);
// A superseded call is closed: the zone called again after its acceptance limit passed.
const openCall = (v) => (v.calls || []).find((c) => !c.declined && !c.superseded && !c.onSiteAtMs);
const isOpen = (v) => v.state !== 'RESOLVED';

function render() {
  const me = state.me;
  if (me) {
    const where = me.departmentId ? t('dept.' + me.departmentId) : me.zoneId ? t('zone.' + me.zoneId) : '';
    $('#who').textContent = [me.name, t('role.' + me.role), where].filter(Boolean).join(' · ');
    const duty = $('#duty');
    duty.hidden = !ZONE_ROLES.has(me.role);
    duty.textContent = t(me.onDuty ? 'duty.on' : 'duty.off');
    duty.dataset.onDuty = me.onDuty ? 'true' : 'false';
    renderReportForm(me);
  }
  const open = [...state.incidents.values()].map((h) => h.view).filter(isOpen)
    .sort((a, b) => Number(a.incidentId) - Number(b.incidentId));
  const list = $('#incidents');
  const openIds = new Set(open.map((v) => v.incidentId));
  for (const [id, row] of rows) if (!openIds.has(id)) { row.remove(); rows.delete(id); }
  open.forEach((v, i) => {
    let row = rows.get(v.incidentId);
    if (!row) { row = buildRow(v.incidentId); rows.set(v.incidentId, row); }
    updateRow(row, v);
    if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);  // move only when out of place: moving drops focus
  });
  for (const v of open) ensureZoneTile(v.zoneId);
  $('#no-incidents').hidden = open.length > 0;
  const note = $('#filter-note');
  note.hidden = !state.filterZone;
  note.textContent = t('filterNote', { zone: t('zone.' + state.filterZone) });
  tick();
}

function ensureZoneTile(id) {
  if (!id || $(`[data-zone="${CSS.escape(id)}"]`)) return;
  const tile = el('button', { type: 'button', class: 'zone', 'data-zone': id, 'data-sla': 'none' },
    el('span', { class: 'zone-name' }), el('span', { class: 'zone-area' }),
    el('span', { class: 'zone-count' }), el('span', { class: 'zone-level' }));
  const pos = ZONES.find((z) => z[0] === id);
  if (pos) { tile.style.gridRow = pos[1]; tile.style.gridColumn = pos[2]; }
  tile.addEventListener('click', () => { state.filterZone = state.filterZone === id ? '' : id; render(); });
  $('#zones').append(tile);
}

function buildRow(id) {
  const clocks = STAGES.map((s) => el('div', { class: 'clock', 'data-stage': s },
    el('span', { class: 'clock-label', 'data-i18n': 'stage.' + s }, t('stage.' + s)),
    el('span', { class: 'countdown', 'data-countdown': s })));
  const button = (action) => el('button', { type: 'button', 'data-action': action, 'data-i18n': 'action.' + action },
    t('action.' + action));
  const input = (cls, ph, extra = {}) =>
    el('input', { class: cls, 'data-field': cls, 'data-i18n-placeholder': ph, placeholder: t(ph), ...extra });
  const outcome = el('select', { class: 'outcome', 'data-field': 'outcome' }, ...['', 'SETTLED', 'UNSETTLED', 'REFERRED'].map((o) =>
    el('option', { value: o, 'data-i18n': 'outcome.' + o }, t('outcome.' + o))));
  const row = el('article', { class: 'incident', 'data-incident': id },
    el('header', { class: 'incident-head' }),
    el('div', { class: 'clocks' }, ...clocks),
    el('ul', { class: 'calls' }),
    el('div', { class: 'actions' },
      el('span', { class: 'group zone-actions' }, input('note', 'note'), button('discover'),
        button('respond'), outcome, button('resolve')),
      el('span', { class: 'group call-actions' }, input('dept', 'department', { list: 'departments' }),
        input('reason', 'callReason'), button('zone-call')),
      el('span', { class: 'group dept-actions' }, button('accept'), button('on-site'),
        input('decline-reason', 'declineReason'), button('decline'))));
  row.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (b && !b.disabled) act(b.dataset.action, id, row);
  });
  return row;
}

function updateRow(row, v) {
  row.dataset.state = v.state;
  row.dataset.incidentZone = v.zoneId;   // not data-zone: that names the zone tiles
  row.hidden = Boolean(state.filterZone) && v.zoneId !== state.filterZone;
  const sev = v.severity ? t('severity.' + v.severity) : '';
  const bits = [`#${v.incidentId}`, t('zone.' + v.zoneId), t('cat.' + v.category), sev, v.location,
    v.description, t('state.' + v.state), v.holder && t('holder', { h: holderName(v.holder) }),
    v.mutualAidZones && t('mutualAid', { z: v.mutualAidZones.map((z) => t('zone.' + z)).join(t('listSep')) })];
  $('.incident-head', row).textContent = bits.filter(Boolean).join(' · ');
  row.dataset.severity = v.severity || '';
  const calls = $('.calls', row);
  calls.replaceChildren(...(v.calls || []).map((c) => {
    const callState = c.superseded ? 'superseded' : c.declined ? 'declined' : c.onSiteAtMs ? 'on-site' : c.acceptedAtMs ? 'accepted' : 'pending';
    const li = el('li', { 'data-call': c.callNo, 'data-department': c.departmentId, 'data-call-state': callState },
      t('callTitle', { n: c.callNo, d: t('dept.' + c.departmentId) }) + (c.reason ? ` · ${c.reason}` : ''));
    if (callState === 'pending') li.append(' · ', t('callAccept'), ' ', el('span', { class: 'countdown', 'data-countdown': 'accept' }));
    else if (callState === 'accepted') li.append(' · ', t('call.accepted'), ' · ', t('callOnSite'), ' ', el('span', { class: 'countdown', 'data-countdown': 'on-site' }));
    else li.append(' · ', t('call.' + callState, { next: c.callNo + 1 }));
    return li;
  }));
  const call = openCall(v);
  const busy = new Set([...sock.pending.values()].filter((p) => p.incidentId === v.incidentId && p.write).map((p) => p.kind));
  const enabled = {
    discover: v.state === 'REPORTED',
    respond: v.state === 'REPORTED' || v.state === 'DISCOVERED',
    resolve: isOpen(v),
    'zone-call': isOpen(v) && (!call || Boolean(call.acceptBreached)),  // a late call may be superseded
    accept: Boolean(call) && !call.acceptedAtMs,
    'on-site': Boolean(call) && Boolean(call.acceptedAtMs),
    decline: Boolean(call),
  };
  for (const b of row.querySelectorAll('button[data-action]')) {
    const a = b.dataset.action;
    b.hidden = !may(a, v);
    b.disabled = !enabled[a] || busy.has(a);
  }
  for (const g of row.querySelectorAll('.group')) g.hidden = !g.querySelector('button:not([hidden])');
}

const holderName = (h) => (ZONES.some((z) => z[0] === h) ? t('zone.' + h) : t('dept.' + h));

// What the signed-in role may do (protocol §10); the server checks again.
function may(action, v) {
  const me = state.me;
  if (!me) return false;
  const ownZone = v.zoneId === me.zoneId;
  const zoneStaff = ZONE_ROLES.has(me.role) && (ownZone || (v.mutualAidZones || []).includes(me.zoneId));
  if (['discover', 'respond', 'resolve'].includes(action)) return me.role === 'COMMUNITY_COMMAND' || zoneStaff;
  if (action === 'zone-call') return me.role === 'COMMUNITY_COMMAND' || (me.role === 'ZONE_CHIEF' && ownZone);
  const call = openCall(v);
  return me.role === 'DEPARTMENT' && Boolean(call) && call.departmentId === me.departmentId;
}

// Time-driven parts only (countdowns, levels, zone colours), every 250 ms.
function tick() {
  const now = serverNow();
  $('#clock').textContent = state.me ? siteTime(now) : '';
  const zones = new Map();
  for (const { view: v } of state.incidents.values()) {
    if (!isOpen(v)) continue;
    const row = rows.get(v.incidentId);
    let level = 'ok';
    const warn = state.warn.get(v.incidentId) || [];
    STAGES.forEach((s, i) => {
      const st = (v.stages || []).find((x) => x.stage === s.toUpperCase());
      if (!st) return;
      const deadline = Number(st.deadlineMs);
      let lv, text;
      if (st.metAtMs) {
        lv = st.breached || Number(st.lateByMs) > 0 ? 'breached' : 'met';
        text = lv === 'met' ? t('met') : t('metLate', { t: fmtDuration(Number(st.lateByMs)) });
      } else {
        lv = clockLevel(now, deadline, Number(v.reportedAtMs), warn[i], st.breached);
        text = fmtDuration(deadline - now);
      }
      level = worse(level, lv === 'met' ? 'ok' : lv);
      setCountdown(row && $(`[data-countdown="${s}"]`, row), text, lv);
    });
    const call = openCall(v);
    if (call) {
      const accepted = Boolean(call.acceptedAtMs);
      const deadline = Number(accepted ? call.onSiteDeadlineMs : call.acceptDeadlineMs);
      const start = Number(accepted ? call.acceptedAtMs : call.raisedAtMs);
      const lv = clockLevel(now, deadline, start, 0, accepted ? call.onSiteBreached : call.acceptBreached);
      level = worse(level, lv);
      setCountdown(row && $(`[data-call="${call.callNo}"] .countdown`, row), fmtDuration(deadline - now), lv);
    }
    if (row) row.dataset.sla = level;
    zones.set(v.zoneId, { level: worse(zones.get(v.zoneId)?.level || 'ok', level), n: (zones.get(v.zoneId)?.n || 0) + 1 });
  }
  for (const tile of document.querySelectorAll('[data-zone]')) {
    const z = zones.get(tile.dataset.zone) || { level: 'none', n: 0 };
    tile.dataset.sla = z.level;
    tile.setAttribute('aria-pressed', String(state.filterZone === tile.dataset.zone));
    $('.zone-name', tile).textContent = `${tile.dataset.zone} ${t('zone.' + tile.dataset.zone)}`;
    $('.zone-area', tile).textContent = I18N['area.' + tile.dataset.zone] ? t('area.' + tile.dataset.zone) : '';
    $('.zone-count', tile).textContent = z.n ? t('openCount', { n: z.n }) : '';
    $('.zone-level', tile).textContent = t('sla.' + z.level);
  }
}

function setCountdown(node, text, level) {
  if (!node) return;
  if (node.textContent !== text) node.textContent = text;
  node.dataset.level = level;
}

function renderReportForm(me) {
  const form = $('#report-form');
  form.hidden = !(ZONE_ROLES.has(me.role) || me.role === 'COMMUNITY_COMMAND' || me.role === 'REPORTER');
  const zone = $('#report-zone');
  if (me.zoneId) zone.value = me.zoneId;
  zone.disabled = Boolean(me.zoneId);  // zone staff report in their own zone only
}

function fillStaticLists() {
  for (const [id] of ZONES) ensureZoneTile(id);
  const opt = (value, key) => el('option', { value, 'data-i18n': key }, t(key));
  $('#report-zone').append(...ZONES.map(([id]) => opt(id, 'zone.' + id)));
  $('#report-category').append(...['', ...CATEGORIES].map((c) => opt(c, 'cat.' + c)));
  $('#report-severity').append(...['', 'LOW', 'NORMAL', 'MAJOR', 'CRITICAL'].map((s) => opt(s, 'severity.' + s)));
  // The protocol does not list departments: suggest the default ones, accept any id typed.
  $('#departments').append(...DEPARTMENTS.map((d) => el('option', { value: d })));
}

// ---- actions -------------------------------------------------------------------
function act(action, id, row) {
  const note = $('.note', row).value.trim();
  const withNote = (extra = {}) => ({ incidentId: id, ...(note && { note }), ...extra });
  let body;
  if (action === 'discover') body = { discover: withNote() };
  else if (action === 'respond') body = { respond: withNote() };
  else if (action === 'resolve') {
    const outcome = $('.outcome', row).value;
    body = { resolve: withNote(outcome ? { outcome } : {}) };
  } else if (action === 'zone-call') {
    const departmentId = $('.dept', row).value.trim();
    if (!departmentId) { status('error', t('needDept')); return; }
    const reason = $('.reason', row).value.trim();
    body = { zoneCall: { incidentId: id, departmentId, ...(reason && { reason }) } };
  } else if (action === 'accept') body = { departmentAccept: { incidentId: id } };
  else if (action === 'on-site') body = { departmentOnSite: { incidentId: id } };
  else if (action === 'decline') {
    const reason = $('.decline-reason', row).value.trim();
    if (!reason) { status('error', t('needReason')); return; }
    body = { departmentDecline: { incidentId: id, reason } };
  }
  request(body, { kind: action, write: true, incidentId: id });
}

function report(e) {
  e.preventDefault();
  const value = (sel) => $(sel).value.trim();
  const body = { zoneId: value('#report-zone'), category: value('#report-category') };
  for (const [field, sel] of [['severity', '#report-severity'], ['location', '#report-location'],
    ['description', '#report-description']]) if (value(sel)) body[field] = value(sel);
  request({ report: body }, { kind: 'report', write: true });
  $('#report-location').value = ''; $('#report-description').value = '';
}

function signIn(e) {
  e.preventDefault();
  const token = $('#token').value.trim();
  if (!token) return;
  state.token = token;
  sessionStorage.setItem('zonecall.token', token);
  $('#token').value = '';
  resetBoard();
  state.everConnected = false; sock.backoffMs = FIRST_BACKOFF_MS; sock.index = 0;
  connect();
}

function signOut(message) {
  state.token = ''; state.me = null;
  sessionStorage.removeItem('zonecall.token');
  clearTimeout(sock.retryTimer);
  const ws = sock.ws;
  sock.ws = null; sock.ready = false; sock.pending.clear();
  if (ws) ws.close(1000);
  resetBoard();
  showBoard(false);
  setConn('signed-out');
  if (typeof message === 'string') status('error', message);
}

function start() {
  fillStaticLists();
  $('#signin-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', () => signOut());
  $('#report-form').addEventListener('submit', report);
  $('#duty').addEventListener('click', () =>
    request({ setDuty: { onDuty: !state.me.onDuty } }, { kind: 'duty', write: true }));
  $('#lang').addEventListener('click', () => {
    lang = lang === 'en' ? 'zh-CN' : 'en';
    sessionStorage.setItem('zonecall.lang', lang);
    applyLanguage();
  });
  applyLanguage();
  setInterval(tick, 250);
  if (state.token) connect();   // a reload keeps the session's token
}

start();
})();
