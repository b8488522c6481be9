// Outages: the daemon down for 8 s, Redis stopped under a daemon. The
// client never sticks, and every request promise says what happened.
import { test } from "node:test";
import assert from "node:assert/strict";

import { WebSocketServer } from "ws";

import { AleatoriaError } from "../aleatoria.js";
import {
  RUNTIMES, clientMaker, collect, freePort, sleep, startDaemon, startRedis, until, within,
} from "./daemons.mjs";

const client = clientMaker();
test.afterEach(() => client.closeAll());

/** How each of `promises` settled: [["resolved" or "rejected", value or error], ...]. */
function outcomes(promises) {
  return Promise.all(promises.map((promise) => within(promise, 8000, "request").then(
    (value) => ["resolved", value], (error) => ["rejected", error])));
}

test("the daemon down for 8 s: clients reconnect, send what waited, withdraw what timed out", async () => {
  const daemon = await startDaemon(["--allow-no-origin"]);
  const room = "outage";
  const kept = [];
  for (const [runtime, WebSocket] of RUNTIMES) {
    const kim = await client.open(daemon.url, { userId: `kim-${runtime}`, room, WebSocket,
      requestTimeout: 60000 });
    kept.push({ kim, states: collect(kim, "state"), opens: collect(kim, "open"),
      closes: collect(kim, "close") });
  }
  const hasty = await client.open(daemon.url, { userId: "hasty", room, requestTimeout: 1000 });
  await daemon.stop();
  const down = Date.now();
  await until(() => kept.every(({ kim }) => kim.state === "reconnecting"));
  const waiting = kept.map(({ kim }) => kim.say(room, `waited ${kim.userId}`));
  const withdrawn = hasty.say(room, "timed out");
  await assert.rejects(withdrawn, (error) => error.code === "timeout" && error.sent === false);
  await sleep(8000 - (Date.now() - down));
  for (const { kim } of kept) assert.equal(kim.state, "reconnecting");
  await startDaemon(["--allow-no-origin"], { port: daemon.port });
  await until(() => kept.every(({ kim }) => kim.state === "open") && hasty.state === "open",
    20000, "every client open again");
  const echoes = await within(Promise.all(waiting), 20000, "what waited");
  assert.deepEqual(echoes.map((echo) => echo.payload.content),
    kept.map(({ kim }) => `waited ${kim.userId}`));
  const history = await hasty.getRecentMessages(room);
  assert.deepEqual(history.map((m) => m.payload.content).sort(),
    kept.map(({ kim }) => `waited ${kim.userId}`).sort(), "each once, the withdrawn never");
  for (const { states, opens, closes } of kept) {
    assert.equal(states[0], "reconnecting");
    assert.equal(states.at(-1), "open");
    assert.equal(opens.length, 1);
    assert.equal(closes.length, 1);
  }
});

let redisDaemon;
async function onRedis() {
  if (!redisDaemon) {
    const redis = await startRedis();
    const daemon = await startDaemon(["--allow-no-origin", "--store", "redis",
      "--redis-host", "127.0.0.1", "--redis-port", String(redis.port),
      "--redis-timeout", "0.5", "--redis-retry-max", "0.2"]);
    redisDaemon = { redis, daemon };
  }
  await untilReady(redisDaemon.daemon, 200);
  return redisDaemon;
}

async function untilReady(daemon, status) {
  const ready = `http://127.0.0.1:${daemon.port}/ready`;
  const end = Date.now() + 10000;
  while ((await fetch(ready).then((r) => r.status, () => 0)) !== status) {
    if (Date.now() > end) throw new Error(`/ready never answered ${status}`);
    await sleep(50);
  }
}

/** Alice (Node's WebSocket) and bob (`ws`) in one room on the Redis daemon, Redis then stopped. */
async function redisDown(room) {
  const { redis, daemon } = await onRedis();
  const [[, nodeWebSocket], [, wsWebSocket]] = RUNTIMES;
  const alice = await client.open(daemon.url, { userId: `alice-${room}`, room,
    WebSocket: nodeWebSocket });
  const bob = await client.open(daemon.url, { userId: `bob-${room}`, room,
    WebSocket: wsWebSocket });
  assert.ok((await alice.say(room, "before")).offset);
  await redis.stop();
  await untilReady(daemon, 503);
  return { alice, bob, async restore() {
    redisDaemon.redis = await startRedis(redis.port);
    await untilReady(daemon, 200);
  } };
}

test("under a Redis outage every request settles once, with the server's error", async () => {
  const { alice, bob, restore } = await redisDown("redis-a");
  const chats = collect(bob, "chat_message");
  const results = await outcomes([
    alice.getRecentMessages("redis-a"), bob.getConversations(),
    alice.say("redis-a", "during"), bob.write(alice.userId, "during"),
  ]);
  for (const [what, value] of results.slice(0, 2)) {
    assert.equal(what, "rejected");
    assert.ok(value instanceof AleatoriaError && value.code === "unavailable", String(value));
  }
  assert.equal(chats.filter((m) => m.payload.content === "during").length, 2,
    "the room message reached bob, unkept, and his own DM's echo came, each once");
  await restore();
  const echo = await alice.say("redis-a", "after");
  assert.ok(echo.offset >= 1, "numbered: kept");
});

test("under a Redis outage say() and write() reject with unavailable, naming what failed", async () => {
  const { alice, bob, restore } = await redisDown("redis-b");
  try {
    const results = await outcomes([alice.say("redis-b", "unkept"),
      bob.write(alice.userId, "unkept")]);
    for (const [what, error] of results) {
      assert.equal(what, "rejected");
      assert.equal(error.code, "unavailable");
      assert.ok(error.failed.includes("history"), String(error.failed));
    }
  } finally {
    await restore();
  }
});

test("Redis hung (SIGSTOP) under a daemon: say() and write() reject with unavailable, once, naming the message", async () => {
  const { redis, daemon } = await onRedis();
  const [[, nodeWebSocket], [, wsWebSocket]] = RUNTIMES;
  const alice = await client.open(daemon.url, { userId: "alice-hung", room: "hung",
    WebSocket: nodeWebSocket });
  const bob = await client.open(daemon.url, { userId: "bob-hung", room: "hung",
    WebSocket: wsWebSocket });
  await alice.say("hung", "before");
  const own = [collect(alice, "chat_message"), collect(bob, "chat_message")];
  const settled = [];
  redis.pause();
  let results;
  try {
    const sent = [alice.say("hung", "in doubt"), bob.write(alice.userId, "in doubt")];
    sent.forEach((promise) => promise.then(() => settled.push("resolved"),
      () => settled.push("rejected")));
    results = await outcomes(sent);
  } finally {
    redis.unpause();
  }
  for (const [what, error] of results) {
    assert.equal(what, "rejected");
    assert.deepEqual([error.code, error.sent], ["unavailable", true]);
    assert.ok(error.failed.includes("history"), String(error.failed));
  }
  assert.deepEqual(results[0][1].failed, ["delivery", "history"], "the room's other daemons");
  await untilReady(daemon, 200);
  await until(() => own.every((seen) => seen.some((m) => m.payload.content === "in doubt" &&
    !m.incoming)), 3000, "the echoes, after the errors");
  assert.deepEqual(settled, ["rejected", "rejected"], "an echo after the error settles nothing");
  // The store may take a message after all (a command that timed out, then ran):
  // an app that would send it again looks for its messageId first.
  const [room, direct] = [await bob.getRecentMessages("hung"),
    await bob.getDirectMessages(alice.userId)];
  for (const [kept, [, error]] of [[room, results[0]], [direct, results[1]]]) {
    const copies = kept.filter((m) => m.payload.content === "in doubt");
    assert.ok(copies.length <= 1);
    for (const copy of copies) assert.equal(copy.messageId, error.payload.messageId);
  }
});

test("a resume refused as too fast (the user's reads under way) is asked again after the retryAfter", async () => {
  const redis = await startRedis();
  const daemon = await startDaemon(["--allow-no-origin", "--store", "redis",
    "--redis-host", "127.0.0.1", "--redis-port", String(redis.port), "--redis-timeout", "5",
    "--redis-retry-max", "0.2", "--max-reads", "1"]);
  const quinn = await client.open(daemon.url, { userId: "quinn", room: "reads" });
  const before = await client.open(daemon.url, { userId: "pia", room: "reads" });
  await quinn.say("reads", "seen");
  await until(() => before.positions.get("room:reads")?.offset === 1);
  const positions = before.getPositions();
  before.close();
  await quinn.say("reads", "missed");
  const other = await client.open(daemon.url, { userId: "pia", room: "reads", resume: false });
  redis.pause();
  try {
    other.getRecentMessages("reads").catch(() => {}); // pia's one read, under way
    const pia = client(daemon.url, { userId: "pia", room: "reads", positions });
    const frames = collect(pia, "message");
    const chats = collect(pia, "chat_message");
    await pia.connect(); // its resume: refused, rate_limited, as the other's read goes on
    await until(() => frames.some((f) => f.type === "error" && f.payload.code === "rate_limited"),
      5000, "the resume refused");
    redis.unpause();
    await until(() => frames.some((f) => f.type === "resumed"), 10000, "resumed");
    assert.deepEqual(chats.map((m) => [m.payload.content, m.offset]), [["missed", 2]]);
    assert.equal(frames.find((f) => f.type === "resumed").payload.rooms.reads.recovered, true);
  } finally {
    redis.unpause();
  }
});

test("across two daemons on Redis each member hears the room in order of offset, its own echoes too", async () => {
  const redis = await startRedis();
  const options = ["--allow-no-origin", "--store", "redis", "--redis-host", "127.0.0.1",
    "--redis-port", String(redis.port)];
  const [one, two] = [await startDaemon(options), await startDaemon(options)];
  for (let round = 0; round < 6; round++) {
    const room = `busy-${round}`;
    const members = [await client.open(one.url, { userId: `ada-${round}`, room }),
      await client.open(two.url, { userId: `bo-${round}`, room }),
      await client.open(one.url, { userId: `cy-${round}`, room })];
    const heard = members.map((member) => collect(member, "chat_message"));
    const said = [];
    for (let n = 0; n < 8; n++) for (const member of members) said.push(member.say(room, `${n}`));
    await Promise.all(said);
    await until(() => heard.every((list) => list.length === said.length), 20000, "all heard");
    for (const list of heard) {
      assert.deepEqual(list.map((m) => m.offset), said.map((_, n) => n + 1));
    }
    client.closeAll();
  }
  await Promise.all([one.stop(), two.stop()]);
  await redis.stop();
});

test("an error naming a chat message rejects its say(), the echo after it is an event", async () => {
  const port = await freePort();
  const server = new WebSocketServer({ port, host: "127.0.0.1" });
  server.on("connection", (socket) => socket.on("message", (data) => {
    const message = JSON.parse(data);
    const echo = { ...message, fromUser: "ann", incoming: false, offset: 1, epoch: "e" };
    if (message.payload.content === "lost") {
      socket.send(JSON.stringify({ type: "error", payload: { code: "unavailable",
        error: "not saved", messageId: message.messageId, failed: ["history"] } }));
      delete echo.offset;
    }
    socket.send(JSON.stringify(echo));
  }));
  try {
    for (const [, WebSocket] of RUNTIMES) {
      const ann = await client.open(`ws://127.0.0.1:${port}/ws`,
        { userId: "ann", resume: false, WebSocket });
      const chats = collect(ann, "chat_message");
      await assert.rejects(ann.say("Lobby", "lost"), (error) => error.code === "unavailable" &&
        error.failed.length === 1 && error.failed[0] === "history");
      assert.equal((await ann.say("Lobby", "kept")).offset, 1);
      assert.deepEqual(chats.map((m) => m.payload.content), ["lost", "kept"]);
    }
  } finally {
    client.closeAll();
    await new Promise((resolve) => server.close(resolve));
  }
});
