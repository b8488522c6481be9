// The client against a real daemon (twistd aleatoria, memory store), with
// Node's own WebSocket and with the `ws` package: make js-test.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { AleatoriaError, Client } from "../aleatoria.js";
import {
  RUNTIMES, clientMaker, collect, counted, next, startDaemon, startProxy, until, within,
} from "./daemons.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
let url, port;
const client = clientMaker();

before(async () => {
  ({ url, port } = await startDaemon(["--allow-no-origin"]));
});

test.afterEach(() => client.closeAll());

for (const [runtime, WebSocket] of RUNTIMES) {
  const connect = (userId, options = {}) =>
    client.open(url, { userId: `${runtime}-${userId}`, WebSocket, ...options });
  const name = (user) => `${runtime}-${user}`;
  const room = (suffix) => `${runtime}-${suffix}`;

  test(`requests resolve with their answers, events come typed [${runtime}]`, async () => {
    const alice = await connect("alice", { room: room("a") });
    const bob = await connect("bob", { room: room("a") });
    const heard = next(alice, "chat_message");
    const echo = await bob.say(room("a"), "hello");
    assert.equal(echo.payload.content, "hello");
    assert.equal(echo.incoming, false);
    assert.equal(echo.offset, 1);
    const message = await heard;
    assert.deepEqual([message.fromUser, message.incoming, message.offset], [name("bob"), true, 1]);
    assert.deepEqual(await alice.getRooms(), [room("a")]);
    const members = await alice.getRoomMembers(room("a"));
    assert.deepEqual([members.members, members.count], [[name("alice"), name("bob")], 2]);
    const history = await alice.getRecentMessages(room("a"), { limit: 5 });
    assert.deepEqual(history.map((m) => m.payload.content), ["hello"]);
    await alice.write(name("bob"), "psst");
    const dms = await bob.getDirectMessages(name("alice"));
    assert.deepEqual(dms.map((m) => [m.payload.content, m.incoming]), [["psst", true]]);
    const inbox = await bob.getConversations();
    assert.deepEqual(inbox.conversations.map((c) => [c.withUser, c.unread]), [[name("alice"), 1]]);
    const read = await bob.markRead(name("alice"), inbox.conversations[0].last.offset);
    assert.equal(read.unread, 0);
  });

  test(`a refused request rejects with the server's code [${runtime}]`, async () => {
    const carol = await connect("carol", { room: room("c") });
    await assert.rejects(carol.getRecentMessages("elsewhere"),
      (error) => error instanceof AleatoriaError && error.code === "not_in_room");
    await assert.rejects(carol.write(name("carol"), "me"),
      (error) => error instanceof AleatoriaError && error.code === "invalid_message");
    assert.equal(await carol.requestPeer(), null);
    const first = carol.request({ type: "get_rooms", messageId: "same" }, "rooms_list");
    await assert.rejects(carol.request({ type: "get_rooms", messageId: "same" }, "rooms_list"),
      (error) => error.code === "invalid_message");
    assert.deepEqual((await first).payload.rooms, [room("c")]);
  });

  test(`after a lost connection it reconnects, sends what was queued, resumes, and every event comes once [${runtime}]`, async () => {
    const dave = await connect("dave", { room: room("d") });
    const erin = await connect("erin", { room: room("d") });
    await erin.say(room("d"), "seen");
    await until(() => dave.positions.get(`room:${room("d")}`)?.offset === 1 &&
      dave.positions.get("inbox"));
    const events = {};
    for (const type of ["state", "open", "close", "resumed", "chat_message", "message"]) {
      events[type] = collect(dave, type);
    }
    dave._socket.close(4000, "a network blip");
    await until(() => dave.state === "reconnecting");
    const queued = dave.say(room("d"), "queued");
    const missed = [await erin.say(room("d"), "missed 1"), await erin.say(room("d"), "missed 2"),
      await erin.write(name("dave"), "missed dm")];
    await until(() => events.resumed.length === 1, 5000, "resumed");
    const [resumed] = events.resumed;
    assert.equal((await queued).payload.content, "queued");
    assert.deepEqual(events.state.slice(0, 2), ["reconnecting", "open"]);
    assert.equal(resumed.payload.rooms[room("d")].recovered, true);
    assert.equal(resumed.payload.direct.recovered, true);
    await until(() => events.chat_message.length >= 4);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const contents = events.chat_message.map((m) => m.payload.content);
    for (const text of ["missed 1", "missed 2", "missed dm", "queued"]) {
      assert.equal(contents.filter((c) => c === text).length, 1, `${text} once in ${contents}`);
    }
    assert.equal(events.resumed.length, 1, "resumed once");
    assert.equal(events.open.length, 1);
    assert.equal(events.close.length, 1);
    const inRoom = events.chat_message.filter((m) => m.room === room("d"));
    assert.deepEqual(inRoom.map((m) => m.offset), [...inRoom.map((m) => m.offset)].sort((a, b) => a - b));
    assert.deepEqual(inRoom.map((m) => m.offset), [2, 3, 4], "every one after where it stood");
    assert.ok(missed[0].offset < missed[1].offset);
  });

  test(`each message received is dispatched once, as itself and as a message, across a reconnect [${runtime}]`, async () => {
    const Counted = counted(WebSocket);
    const jack = client(url, { userId: name("jack"), room: room("j"), WebSocket: Counted });
    const kate = await connect("kate", { room: room("j") });
    const seen = { message: collect(jack, "message"), open: collect(jack, "open"),
      close: collect(jack, "close"), state: collect(jack, "state") };
    const types = ["welcome", "chat_message", "resumed", "room_joined", "rooms_list",
      "recent_messages", "conversations", "user_joined", "user_left", "error"];
    for (const type of types) seen[type] = collect(jack, type);
    await jack.connect();
    await kate.say(room("j"), "one");
    await kate.write(name("jack"), "dm one");
    await until(() => seen.chat_message.length === 2);
    await jack.getRooms();
    jack._socket.close(4000, "a network blip");
    await until(() => jack.state === "reconnecting");
    await kate.say(room("j"), "two");
    await kate.write(name("jack"), "dm two");
    await until(() => seen.resumed.length === 1 && seen.chat_message.length >= 4);
    await jack.getRooms();
    await jack.getRecentMessages("elsewhere").catch(() => {});
    const frames = Counted.frames;
    const sorted = (list) => list.map((m) => JSON.stringify(m)).sort();
    assert.deepEqual(sorted(seen.message), sorted(frames), "every message once");
    for (const type of types) {
      assert.equal(seen[type].length, frames.filter((f) => f.type === type).length, type);
    }
    assert.deepEqual(seen.chat_message.map((m) => m.payload.content).sort(),
      ["dm one", "dm two", "one", "two"]);
    assert.equal(seen.resumed.length, 1);
    assert.deepEqual(seen.open, [{ reconnected: false }, { reconnected: true }]);
    assert.equal(seen.close.length, 1);
    assert.deepEqual(seen.state, ["connecting", "open", "reconnecting", "open"]);
  });

  test(`around a lost connection each request settles once, and says whether it was sent [${runtime}]`, async () => {
    const proxy = await startProxy(port);
    const lena = await client.open(proxy.url, { userId: name("lena"), room: room("l"), WebSocket });
    const mick = await connect("mick", { room: room("l") });
    await until(() => lena.positions.get(`room:${room("l")}`));
    const own = collect(lena, "chat_message");
    proxy.hold();
    const inDoubt = lena.say(room("l"), "kept, its echo lost");
    await until(async () => (await mick.getRecentMessages(room("l"))).length === 1);
    proxy.cut();
    proxy.release();
    const error = await within(inDoubt.then(() => null, (e) => e), 3000, "say()");
    assert.ok(error instanceof AleatoriaError);
    assert.deepEqual([error.code, error.sent], ["disconnected", true]);
    await until(() => own.length === 1, 3000, "the message in doubt back in the resume");
    assert.deepEqual([own[0].payload.content, own[0].incoming], ["kept, its echo lost", false]);

    lena._socket.close(4000, "a network blip");
    const requeued = lena.say(room("l"), "sent as the socket closed"); // closing: not written
    assert.equal((await requeued).payload.content, "sent as the socket closed");
    const history = await mick.getRecentMessages(room("l"));
    assert.deepEqual(history.map((m) => m.payload.content),
      ["sent as the socket closed", "kept, its echo lost"]);
    await proxy.stop();
  });

  test(`what came live before the resume and what it replays are dispatched in order [${runtime}]`, async () => {
    let held = null; // the resume frame, kept back until the test lets it go
    class Slow extends WebSocket {
      send(data) {
        if (JSON.parse(data).type === "resume") held = () => super.send(data);
        else super.send(data);
      }
    }
    const nora = await connect("nora", { room: room("n"), WebSocket: Slow });
    const otto = await connect("otto", { room: room("n") });
    await otto.say(room("n"), "seen");
    await until(() => nora.positions.get(`room:${room("n")}`)?.offset === 1);
    const chats = collect(nora, "chat_message");
    const resumed = collect(nora, "resumed");
    nora._socket.close(4000, "a network blip");
    await until(() => nora.state === "reconnecting");
    await otto.say(room("n"), "missed");
    await until(() => nora.state === "open" && held, 3000, "reconnected, resume held back");
    await otto.say(room("n"), "live");
    await otto.getRooms(); // nora's copy of "live" is on its way before the resume
    const echo = await within(nora.say(room("n"), "mine"), 3000, "say() while the resume is held");
    assert.equal(echo.offset, 4);
    assert.deepEqual(chats, [], "held until the resumed");
    held();
    await until(() => resumed.length === 1);
    assert.deepEqual(chats.map((m) => [m.payload.content, m.offset]),
      [["missed", 2], ["live", 3], ["mine", 4]]);
    assert.deepEqual(resumed[0].payload.rooms[room("n")], { recovered: true, offset: 4,
      epoch: resumed[0].payload.rooms[room("n")].epoch });
  });

  test(`replaced by a newer connection, it does not reconnect [${runtime}]`, async () => {
    const first = await connect("frank", { room: room("f") });
    const closed = next(first, "close");
    const refusals = collect(first, "refused");
    const pending = first.request({ type: "get_rooms" }, "never");
    await connect("frank", { room: room("f") });
    const { code } = await closed;
    assert.equal(code, 4001);
    await assert.rejects(pending, (error) => error.code === "replaced");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(first.state, "closed");
    assert.deepEqual(refusals, []);
    assert.throws(() => first.send({ type: "get_rooms" }), AleatoriaError);
  });

  test(`positions saved before a reload resume what was missed after it [${runtime}]`, async () => {
    const gina = await connect("gina", { room: room("g") });
    const hugo = await connect("hugo", { room: room("g") });
    await hugo.say(room("g"), "before");
    await hugo.write(name("gina"), "dm before");
    await until(() => gina.getPositions().direct && gina.getPositions().direct.offset > 0 &&
      gina.getPositions().rooms[room("g")].offset > 0);
    const saved = JSON.parse(JSON.stringify(gina.getPositions()));
    gina.close();
    await hugo.say(room("g"), "while away");
    await hugo.write(name("gina"), "dm while away");
    const again = client(url, { userId: name("gina"), room: room("g"), WebSocket,
      positions: saved });
    const chats = collect(again, "chat_message");
    const resumed = collect(again, "resumed");
    await again.connect();
    await until(() => resumed.length === 1);
    assert.deepEqual(chats.map((m) => m.payload.content).sort(), ["dm while away", "while away"]);
    assert.equal(resumed[0].payload.rooms[room("g")].recovered, true);
  });

  test(`a stream that cannot be replayed is an unrecovered event [${runtime}]`, async () => {
    const saved = { rooms: { [room("i")]: { offset: 5, epoch: "not-this-one" } } };
    const ivan = client(url, { userId: name("ivan"), room: room("i"), WebSocket, positions: saved });
    const unrecovered = collect(ivan, "unrecovered");
    const resumed = collect(ivan, "resumed");
    await ivan.connect();
    await until(() => resumed.length === 1);
    assert.equal(unrecovered.length, 1);
    assert.equal(unrecovered[0].room, room("i"));
    assert.equal(unrecovered[0].recovered, false);
    assert.deepEqual(ivan.getPositions().rooms[room("i")],
      { offset: unrecovered[0].offset, epoch: unrecovered[0].epoch });
  });
}

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

test("the demo serves the client itself, byte for byte", () => {
  const demo = path.join(here, "../../../aleatoria/http/demo/aleatoria.js");
  assert.ok(readFileSync(demo).equals(readFileSync(path.join(here, "../aleatoria.js"))));
});

test("npm pack packs the module, its types and README, and leaves nothing untracked", () => {
  const folder = path.join(here, "..");
  const untracked = () => execFileSync("git", ["status", "--porcelain", "--untracked-files=all",
    "."], { cwd: folder, encoding: "utf8" });
  const before = untracked();
  assert.doesNotMatch(before, /node_modules|\.tgz/);
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json"],
    { cwd: folder, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  try {
    assert.deepEqual(packed.files.map((f) => f.path).sort(),
      ["README.md", "aleatoria.d.ts", "aleatoria.js", "package.json"]);
    assert.equal(untracked(), before);
  } finally {
    rmSync(path.join(folder, packed.filename), { force: true });
  }
});

test("requests dropped over the rate limit reject rate_limited at once, with the retryAfter", async () => {
  const { url: slow } = await startDaemon(["--allow-no-origin", "--rate-limit", "0.01",
    "--rate-burst", "5"]);
  const rita = await client.open(slow, { userId: "rita", room: "r", requestTimeout: 60000 });
  const said = await within(Promise.allSettled([1, 2, 3, 4, 5].map((n) => rita.say("r", `n${n}`))),
    10000, "every say() settled, none waiting for requestTimeout");
  const dropped = said.filter((r) => r.status === "rejected").map((r) => r.reason);
  assert.ok(dropped.length >= 1, "over the burst");
  for (const error of dropped) {
    assert.deepEqual([error.code, error.sent], ["rate_limited", true]);
    assert.ok(error.payload.retryAfter > 0);
  }
  const kept = said.filter((r) => r.status === "fulfilled").map((r) => r.value.payload.content);
  const fresh = await client.open(slow, { userId: "sam", room: "r" });
  const history = await fresh.getRecentMessages("r");
  assert.deepEqual(history.map((m) => m.payload.content).reverse(), kept, "the dropped never kept");
});
