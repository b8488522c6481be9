// The client against a real daemon (twistd aleatoria, memory store), with
// Node's own WebSocket: node --experimental-websocket --test test/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";

import { AleatoriaError, Client } from "../aleatoria.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const twistd = process.env.ALEATORIA_TWISTD || path.join(here, "../../../.venv/bin/twistd");
let daemon;
let url;

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

before(async () => {
  const port = await freePort();
  daemon = spawn(twistd, ["--nodaemon", "--pidfile=", "aleatoria",
    "--port", `tcp:${port}:interface=127.0.0.1`, "--allow-no-origin",
    "--address-rate", "100000", "--address-burst", "100000",
    "--connect-rate", "100000", "--connect-burst", "100000"],
  { cwd: process.env.TMPDIR || "/tmp", stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    let log = "";
    daemon.stdout.on("data", (chunk) => {
      log += chunk;
      if (log.includes("Listening on")) resolve();
    });
    daemon.on("exit", (code) => reject(new Error(`twistd exited with ${code}:\n${log}`)));
  });
  url = `ws://127.0.0.1:${port}/ws`;
});

after(() => daemon.kill("SIGTERM"));

const clients = [];
async function connect(userId, options = {}) {
  const client = new Client(url, { userId, reconnect: { initial: 50, max: 200 }, ...options });
  clients.push(client);
  await client.connect();
  return client;
}

function next(client, type) {
  return new Promise((resolve) => client.addEventListener(type, (e) => resolve(e.detail),
    { once: true }));
}

function collect(client, type) {
  const seen = [];
  client.addEventListener(type, (e) => seen.push(e.detail));
  return seen;
}

async function until(condition) {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("condition never held");
}

test.afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

test("requests resolve with their answers, events come typed", async () => {
  const alice = await connect("alice", { room: "js-a" });
  const bob = await connect("bob", { room: "js-a" });
  const heard = next(alice, "chat_message");
  const echo = await bob.say("js-a", "hello");
  assert.equal(echo.payload.content, "hello");
  assert.equal(echo.incoming, false);
  assert.equal(echo.offset, 1);
  const message = await heard;
  assert.deepEqual([message.fromUser, message.incoming, message.offset], ["bob", true, 1]);
  assert.deepEqual(await alice.getRooms(), ["js-a"]);
  const members = await alice.getRoomMembers("js-a");
  assert.deepEqual([members.members, members.count], [["alice", "bob"], 2]);
  const history = await alice.getRecentMessages("js-a", { limit: 5 });
  assert.deepEqual(history.map((m) => m.payload.content), ["hello"]);
  await alice.write("bob", "psst");
  const dms = await bob.getDirectMessages("alice");
  assert.deepEqual(dms.map((m) => [m.payload.content, m.incoming]), [["psst", true]]);
  const inbox = await bob.getConversations();
  assert.deepEqual(inbox.conversations.map((c) => [c.withUser, c.unread]), [["alice", 1]]);
  const read = await bob.markRead("alice", inbox.conversations[0].last.offset);
  assert.equal(read.unread, 0);
});

test("a refused request rejects with the server's code", async () => {
  const carol = await connect("carol", { room: "js-c" });
  await assert.rejects(carol.getRecentMessages("elsewhere"),
    (error) => error instanceof AleatoriaError && error.code === "not_in_room");
  await assert.rejects(carol.write("carol", "me"),
    (error) => error instanceof AleatoriaError && error.code === "invalid_message");
  assert.equal(await carol.requestPeer(), null);
});

test("after a lost connection it reconnects, sends what was queued, and resumes", async () => {
  const dave = await connect("dave", { room: "js-d" });
  const erin = await connect("erin", { room: "js-d" });
  await erin.say("js-d", "seen");
  await until(() => dave.positions.get("room:js-d") && dave.positions.get("inbox"));
  const states = collect(dave, "state");
  const chats = collect(dave, "chat_message");
  dave._socket.close(4000, "a network blip");
  await until(() => dave.state === "reconnecting");
  dave.send({ type: "chat_message", room: "js-d", payload: { content: "queued" } });
  const missed = [await erin.say("js-d", "missed 1"), await erin.say("js-d", "missed 2"),
    await erin.write("dave", "missed dm")];
  const resumed = await next(dave, "resumed");
  assert.deepEqual(states.slice(0, 2), ["reconnecting", "open"]);
  assert.equal(resumed.payload.rooms["js-d"].recovered, true);
  assert.equal(resumed.payload.direct.recovered, true);
  await until(() => chats.length >= 4);
  const contents = chats.map((m) => m.payload.content);
  for (const text of ["missed 1", "missed 2", "missed dm", "queued"]) {
    assert.equal(contents.filter((c) => c === text).length, 1, `${text} once in ${contents}`);
  }
  const inRoom = chats.filter((m) => m.room === "js-d");
  assert.deepEqual(inRoom.map((m) => m.offset), [...inRoom.map((m) => m.offset)].sort((a, b) => a - b));
  assert.equal(missed[0].offset + 1, missed[1].offset);
});

test("replaced by a newer connection, it does not reconnect", async () => {
  const first = await connect("frank", { room: "js-f" });
  const closed = next(first, "close");
  await connect("frank", { room: "js-f" });
  const { code } = await closed;
  assert.equal(code, 4001);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(first.state, "closed");
  assert.throws(() => first.send({ type: "get_rooms" }), AleatoriaError);
});

test("backoff grows with jitter, and a 1001's retry-after is honoured", () => {
  const client = new Client(url, { reconnect: { initial: 100, max: 1000, factor: 2, jitter: 0.5 } });
  const delays = [0, 1, 2, 3, 4, 5].map(() => client._delay(""));
  delays.forEach((delay, n) => {
    const base = Math.min(1000, 100 * 2 ** n);
    assert.ok(delay > base / 2 - 1 && delay <= base, `${delay} for attempt ${n}`);
  });
  const hinted = client._delay("server shutting down; retry-after=5");
  assert.ok(hinted >= 2500 && hinted <= 5000, `${hinted}`);
});
