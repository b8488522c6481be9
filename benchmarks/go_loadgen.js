// Load generator speaking the Aleatoria wire protocol (compat subset), so the
// same run can drive the project's daemon and the Go original
// (benchmarks/versus_go.py runs it).
//
// usage: node loadgen.js SCENARIO URL ORIGIN [options as k=v]
//   fanout  members=1000 rate=0 seconds=10 size=100   (rate=0: as fast as the window allows)
//   dm      pairs=200 seconds=10 size=200              (ping-pong round trips)
//   idle    conns=5000 unique=0                        (prints when all are open, holds hold=10 s; unique=1: a room each)
// Prints one JSON line with the figures.
'use strict';
const WebSocket = require('ws');

const [scenario, base, origin, ...rest] = process.argv.slice(2);
const opt = Object.fromEntries(rest.map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000; // ms

function connect(user, room) {
  const q = new URLSearchParams({ userId: user });
  if (room) q.set('room', room);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}?${q}`, { origin, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function connectMany(n, mk, batch = 200) {
  const out = [];
  for (let i = 0; i < n; i += batch) {
    const part = [];
    for (let j = i; j < Math.min(n, i + batch); j++) part.push(mk(j));
    out.push(...(await Promise.all(part)));
  }
  return out;
}

function pct(arr, p) {
  if (!arr.length) return null;
  const s = Float64Array.from(arr).sort();
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(3);
}

async function fanout() {
  const members = opt.members || 1000, seconds = opt.seconds || 10, size = opt.size || 100;
  const rate = opt.rate || 0, window = opt.window || 50;
  const room = 'bench' + Date.now();
  const t0 = now();
  const subs = await connectMany(members, (i) => connect(`m${i}`, room));
  const connectMs = now() - t0;
  const pub = await connect('publisher', room);
  let delivered = 0, acked = 0, sent = 0;
  const lat = [];
  const pad = 'x'.repeat(Math.max(0, size - 20));
  for (const s of subs) {
    s.on('message', (raw) => {
      const m = JSON.parse(raw);
      if (m.type !== 'chat_message') return;
      delivered++;
      const ts = Number(m.payload.content.split('|')[0]);
      if (delivered % 7 === 0) lat.push(now() - ts);
    });
  }
  await new Promise((r) => setTimeout(r, 500));
  const start = now();
  let stop = false;
  const send = () => {
    sent++;
    pub.send(JSON.stringify({ type: 'chat_message', room, payload: { content: `${now()}|${pad}` } }));
  };
  pub.on('message', (raw) => {
    const m = JSON.parse(raw);
    if (m.type !== 'chat_message') return;
    acked++;
    if (!rate && !stop) send(); // closed loop: one new message per echo
  });
  if (rate) {
    const iv = setInterval(() => { if (!stop) send(); }, 1000 / rate);
    setTimeout(() => clearInterval(iv), seconds * 1000);
  } else {
    for (let i = 0; i < window; i++) send();
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  const elapsed = (now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  const res = { scenario: 'fanout', members, sent, acked, delivered, seconds: +elapsed.toFixed(2),
    deliveries_per_s: Math.round(delivered / elapsed), p50_ms: pct(lat, 50), p99_ms: pct(lat, 99),
    connect_ms: Math.round(connectMs) };
  for (const s of [...subs, pub]) s.terminate();
  return res;
}

async function dm() {
  const pairs = opt.pairs || 200, seconds = opt.seconds || 10, size = opt.size || 200;
  const pad = 'y'.repeat(Math.max(0, size - 20));
  const as = await connectMany(pairs, (i) => connect(`a${i}`));
  const bs = await connectMany(pairs, (i) => connect(`b${i}`));
  const rtt = [];
  let trips = 0, stop = false;
  bs.forEach((b, i) => b.on('message', (raw) => {
    const m = JSON.parse(raw);
    if (m.type === 'webrtc_candidate') b.send(JSON.stringify({ type: 'webrtc_candidate', toUser: `a${i}`, payload: m.payload }));
  }));
  as.forEach((a, i) => {
    const go = () => a.send(JSON.stringify({ type: 'webrtc_candidate', toUser: `b${i}`,
      payload: { candidate: `${now()}|${pad}`, sdpMid: '0', sdpMLineIndex: 0 } }));
    a.on('message', (raw) => {
      const m = JSON.parse(raw);
      if (m.type !== 'webrtc_candidate') return;
      trips++;
      if (trips % 5 === 0) rtt.push(now() - Number(m.payload.candidate.split('|')[0]));
      if (!stop) go();
    });
    a.goFirst = go;
  });
  await new Promise((r) => setTimeout(r, 300));
  const start = now();
  as.forEach((a) => a.goFirst());
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  const elapsed = (now() - start) / 1000;
  const res = { scenario: 'dm', pairs, round_trips: trips, round_trips_per_s: Math.round(trips / elapsed),
    relays_per_s: Math.round((2 * trips) / elapsed), rtt_p50_ms: pct(rtt, 50), rtt_p99_ms: pct(rtt, 99) };
  for (const s of [...as, ...bs]) s.terminate();
  return res;
}

async function idle() {
  const conns = opt.conns || 5000, hold = opt.hold || 10;
  const t0 = now();
  // unique=1: each client in a room of its own (no presence traffic); default: the Lobby, as real clients do
  const all = await connectMany(conns, (i) => connect(`i${i}`, opt.unique ? `solo${i}` : undefined), 250);
  const ms = now() - t0;
  console.log(JSON.stringify({ scenario: 'idle', phase: 'open', unique: !!opt.unique, conns: all.length, connect_ms: Math.round(ms),
    connects_per_s: Math.round(all.length / (ms / 1000)) }));
  await new Promise((r) => setTimeout(r, hold * 1000));
  for (const s of all) s.terminate();
  return { scenario: 'idle', phase: 'done', conns: all.length };
}

({ fanout, dm, idle })[scenario]().then((r) => { console.log(JSON.stringify(r)); process.exit(0); },
  (e) => { console.error(String(e)); process.exit(1); });
