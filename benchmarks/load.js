// The load generator for `make bench`, on Node's `ws` so that the client side
// is cheap: run it pinned to another core than the server. It prints one JSON
// line per scenario, with its own CPU use (a share of one core) so a reader can
// tell whether the generator, not the server, was the limit.
//
//   node load.js SCENARIO PORT '{"option": value, ...}'
//
// Scenarios: idle, lobby, storm, fanout, relay, relay_rate, matchmaking (see each function).
"use strict";
const WebSocket = require("ws");

const [scenario, port, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions || "{}");
const url = (user, room) =>
  `ws://127.0.0.1:${port}/ws?userId=${user}` + (room ? `&room=${encodeURIComponent(room)}` : "");

function open(user, room) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url(user, room), { perMessageDeflate: false });
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

async function openMany(count, prefix, room, parallel = 200) {
  const sockets = [];
  for (let start = 0; start < count; start += parallel) {
    const batch = [];
    for (let n = start; n < Math.min(count, start + parallel); n++) {
      batch.push(open(`${prefix}${n}`, typeof room === "function" ? room(n) : room));
    }
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

const now = () => Number(process.hrtime.bigint()) / 1e6; // milliseconds
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function measured(run) {
  // Run `run`, returning its result with the generator's CPU share.
  return async (...args) => {
    const cpu = process.cpuUsage();
    const started = now();
    const result = await run(...args);
    const used = process.cpuUsage(cpu);
    const seconds = (now() - started) / 1000;
    result.generator_cpu = Number(((used.user + used.system) / 1e6 / seconds).toFixed(3));
    return result;
  };
}

// idle: open `count` connections (each in a room of its own); report the
// connect rate, then hold them until told to stop, so the caller can read the
// server's memory.
async function idle({ count = 1000 }) {
  const started = now();
  const sockets = await openMany(count, "idle", (n) => `idle${n}`);
  const seconds = (now() - started) / 1000;
  console.log(JSON.stringify({ scenario: "idle", count, connects_per_s: Math.round(count / seconds) }));
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once("data", resolve));
  for (const socket of sockets) socket.terminate();
  return null;
}

// lobby: `count` clients connect with no room -- all into the Lobby, as real
// clients do -- then all leave at once. Connects per second, and the seconds
// from the last one leaving until a new client gets an answer: how long the
// server was busy telling everybody who left.
async function lobby({ count = 1000 }) {
  const started = now();
  const sockets = await openMany(count, "lobby", undefined);
  const seconds = (now() - started) / 1000;
  const left = now();
  for (const socket of sockets) socket.terminate();
  const probe = await open("probe", "probe");
  await new Promise((resolve) => {
    probe.on("message", (data) => {
      if (JSON.parse(data).type === "chat_message") resolve();
    });
    probe.send(JSON.stringify({ type: "chat_message", room: "probe", payload: { content: "?" } }));
  });
  const answered = (now() - left) / 1000;
  probe.terminate();
  return {
    scenario: "lobby", count, connects_per_s: Math.round(count / seconds),
    seconds_to_answer_after_leaving: Math.round(answered * 1000) / 1000,
  };
}

// storm: `count` clients in the Lobby drop at once and reconnect at once, as
// after a network blip: seconds until every one is back, and connects per
// second during the storm.
async function storm({ count = 1000 }) {
  let sockets = await openMany(count, "storm", undefined);
  for (const socket of sockets) socket.terminate();
  const started = now();
  sockets = await openMany(count, "storm", undefined);
  const seconds = (now() - started) / 1000;
  for (const socket of sockets) socket.terminate();
  return {
    scenario: "storm", count, seconds_to_reconnect_all: Math.round(seconds * 1000) / 1000,
    connects_per_s: Math.round(count / seconds),
  };
}

// fanout: `members` users in one room and one publisher. First as fast as
// the server takes it (at most `window` messages unechoed) for `seconds`:
// deliveries per second. Then at a fixed `rate` for `seconds`: latency from
// publishing to each member's receipt, p50 and p99.
const fanout = measured(async ({ members = 100, seconds = 5, rate = 200, window = 20 }) => {
  const room = "fanout";
  const sockets = await openMany(members, "m", room);
  const publisher = await open("publisher", room);
  await sleep(500); // presence of the last joins settles
  let delivered = 0;
  const latencies = [];
  let phase = "warmup";
  const chat = Buffer.from('"chat_message"');
  for (const socket of sockets) {
    socket.on("message", (data) => {
      // Counting at saturation needs no parse: keep the generator light.
      if (phase === "saturate") {
        if (data.includes(chat)) delivered++;
        return;
      }
      const message = JSON.parse(data);
      if (phase === "latency" && message.type === "chat_message") {
        latencies.push(now() - Number(message.payload.content.slice(0, 20)));
      }
    });
  }
  const body = "x".repeat(100);
  const send = () => publisher.send(JSON.stringify({
    type: "chat_message", room, payload: { content: String(now()).padEnd(20) + body },
  }));
  let inFlight = 0;
  let stop = false;
  const echoed = new Promise((resolve) => {
    publisher.on("message", (data) => {
      if (JSON.parse(data).type !== "chat_message") return;
      inFlight--;
      if (phase === "saturate" && !stop) while (inFlight < window) { inFlight++; send(); }
      if (stop && inFlight === 0) resolve();
    });
  });
  phase = "saturate";
  const started = now();
  while (inFlight < window) { inFlight++; send(); }
  await sleep(seconds * 1000);
  stop = true;
  const saturated = delivered / ((now() - started) / 1000);
  await echoed;
  await sleep(500);
  phase = "latency";
  const interval = 1000 / rate;
  const until = now() + seconds * 1000;
  for (let next = now(); next < until; next += interval) {
    await sleep(Math.max(0, next - now()));
    send();
  }
  await sleep(500);
  for (const socket of [...sockets, publisher]) socket.terminate();
  return {
    scenario: "fanout", members, deliveries_per_s: Math.round(saturated),
    latency_rate: rate, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99),
  };
});

// Pair left[n] with right[n]: right echoes every candidate back; `returned`
// hears of each echo that reaches left[n], with its payload.
function echoing(left, right, returned) {
  for (let n = 0; n < left.length; n++) {
    right[n].on("message", (data) => {
      const message = JSON.parse(data);
      if (message.type === "webrtc_candidate") {
        right[n].send(JSON.stringify({ type: "webrtc_candidate", toUser: `a${n}`, payload: message.payload }));
      }
    });
    left[n].on("message", (data) => {
      const message = JSON.parse(data);
      if (message.type === "webrtc_candidate") returned(n, message.payload);
    });
  }
}

// relay: `pairs` pairs ping-pong a webrtc_candidate-sized message for
// `seconds`: round trips per second (two relays each), p50 and p99.
const relay = measured(async ({ pairs = 100, seconds = 5 }) => {
  const left = await openMany(pairs, "a", (n) => `pair${n}`);
  const right = await openMany(pairs, "b", (n) => `pair${n}`);
  const candidate = {
    candidate: "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr " +
      "10.0.0.7 rport 46154 generation 0 ufrag EEtu network-cost 999",
    sdpMid: "0", sdpMLineIndex: 0,
  };
  const latencies = [];
  let roundTrips = 0;
  let running = true;
  const ping = (n) => left[n].send(JSON.stringify({
    type: "webrtc_candidate", toUser: `b${n}`, payload: { ...candidate, sent: now() },
  }));
  echoing(left, right, (n, payload) => {
    roundTrips++;
    latencies.push(now() - payload.sent);
    if (running) ping(n);
  });
  const started = now();
  for (let n = 0; n < pairs; n++) ping(n);
  await sleep(seconds * 1000);
  running = false;
  const elapsed = (now() - started) / 1000;
  await sleep(300);
  for (const socket of [...left, ...right]) socket.terminate();
  return {
    scenario: "relay", pairs, round_trips_per_s: Math.round(roundTrips / elapsed),
    relays_per_s: Math.round((2 * roundTrips) / elapsed),
    p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99),
  };
});

// relay_rate: with `idle` other users connected, `pairs` pairs relay at a
// fixed `rate` messages a second in all (each reply is one more relay):
// p50 and p99 latency of a round trip -- the DM relay under a steady load.
const relay_rate = measured(async ({ idle = 1000, pairs = 100, rate = 2000, seconds = 5 }) => {
  const bystanders = await openMany(idle, "i", (n) => `i${n}`);
  const left = await openMany(pairs, "a", (n) => `pair${n}`);
  const right = await openMany(pairs, "b", (n) => `pair${n}`);
  const latencies = [];
  echoing(left, right, (n, payload) => latencies.push(now() - payload.sent));
  await sleep(500);
  const interval = 2000 / rate; // each round trip is two relays
  const until = now() + seconds * 1000;
  let n = 0;
  for (let next = now(); next < until; next += interval) {
    await sleep(Math.max(0, next - now()));
    left[n].send(JSON.stringify({
      type: "webrtc_candidate", toUser: `b${n}`, payload: { candidate: "candidate:1 1 udp 1 203.0.113.7 9 typ host", sent: now() },
    }));
    n = (n + 1) % pairs;
  }
  await sleep(500);
  for (const socket of [...bystanders, ...left, ...right]) socket.terminate();
  return {
    scenario: "relay_rate", idle, pairs, rate, round_trips: latencies.length,
    p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99),
  };
});

// Seekers request a peer, hang up on each assignment (seen by `assigned`)
// and request again, for `seconds`; then `state.running` is false (the
// waiters stop saying available) and every socket is closed. The pairings
// made, and how many a second.
async function seek(state, waiting, seeking, request, seconds, assigned = () => {}) {
  let pairings = 0;
  for (const socket of seeking) {
    socket.on("message", (data) => {
      const message = JSON.parse(data);
      if (message.type === "assign_role") {
        pairings++;
        assigned(message);
        socket.send(JSON.stringify({ type: "hangup", toUser: message.payload.peerId }));
        if (state.running) request(socket);
      } else if (message.type === "no_peer_available" && state.running) {
        setTimeout(() => request(socket), 1);
      }
    });
  }
  const started = now();
  for (const socket of seeking) request(socket);
  await sleep(seconds * 1000);
  state.running = false;
  const elapsed = (now() - started) / 1000;
  await sleep(300);
  for (const socket of [...waiting, ...seeking]) socket.terminate();
  return { pairings, pairings_per_s: Math.round(pairings / elapsed) };
}

// matchmaking: `seekers` users request a peer, hang up as soon as one is
// assigned and request again; `waiters` wait in the pool and declare
// themselves available again after each call. Pairings per second.
const matchmaking = measured(async ({ seekers = 50, waiters = 50, seconds = 5 }) => {
  const waiting = await openMany(waiters, "w", (n) => `w${n}`);
  const seeking = await openMany(seekers, "s", (n) => `s${n}`);
  const state = { running: true };
  for (const socket of waiting) {
    socket.on("message", (data) => {
      if (JSON.parse(data).type === "hangup" && state.running) {
        socket.send('{"type":"user_available_webrtc"}');
      }
    });
    socket.send('{"type":"user_available_webrtc"}');
  }
  await sleep(300);
  const request = (socket) => socket.send('{"type":"request_random_peer"}');
  const { pairings_per_s } = await seek(state, waiting, seeking, request, seconds);
  return { scenario: "matchmaking", seekers, waiters, pairings_per_s };
});

// pool: `pool` users wait in the pool (each available again after its
// call), `seekers` request a peer and hang up as soon as one is assigned.
// With `interests`, everybody names that many of `vocabulary` interests
// (at random): a request's cost should grow with those, not with the pool.
// Pairings per second, and the share of them that had an interest in common.
const pooled = (defaults) => measured(async (given) => {
  const { pool, seekers, interests, vocabulary, seconds } = { ...defaults, ...given };
  const pick = () => Array.from({ length: interests },
    () => `topic${Math.floor(Math.random() * vocabulary)}`);
  const available = (socket) => socket.send(JSON.stringify(
    { type: "user_available_webrtc", payload: { interests: pick() } }));
  const waiting = await openMany(pool, "p", () => "");
  let shared = 0;
  const state = { running: true };
  for (const socket of waiting) {
    socket.on("message", (data) => {
      if (JSON.parse(data).type === "hangup" && state.running) available(socket);
    });
    available(socket);
  }
  await sleep(1000);
  const seeking = await openMany(seekers, "q", () => "");
  const request = (socket) => socket.send(JSON.stringify(
    { type: "request_random_peer", payload: { interests: pick() } }));
  const { pairings, pairings_per_s } = await seek(state, waiting, seeking, request, seconds,
    (message) => { if (message.payload.commonInterests.length) shared++; });
  return { scenario: interests ? "pool_interests" : "pool", pool, seekers, interests,
           vocabulary, pairings_per_s,
           shared: pairings ? Math.round((shared / pairings) * 100) / 100 : 0 };
});
const pool = pooled({ pool: 10000, seekers: 50, interests: 0, vocabulary: 200, seconds: 5 });
const pool_interests = pooled({ pool: 10000, seekers: 50, interests: 3, vocabulary: 200,
                                seconds: 5 });

const scenarios = { idle, lobby, storm, fanout, relay, relay_rate, matchmaking, pool,
                    pool_interests };
scenarios[scenario](options).then(
  (result) => {
    if (result) console.log(JSON.stringify(result));
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
