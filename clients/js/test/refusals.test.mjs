// Who gets in: refused connects settle with the server's reason, tokens
// come fresh from getToken, and anonymous users keep who they are.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createConnection } from "node:net";

import { AleatoriaError, Client } from "../aleatoria.js";
import {
  RUNTIMES, clientMaker, collect, counted, freePort, jwt, randomSecret, sleep, startDaemon,
  until, within,
} from "./daemons.mjs";

const client = clientMaker();
const jwtSecret = randomSecret();
const daemons = {};

const anonymous = ["--allow-no-origin", "--anonymous"];

before(async () => {
  const [strict, tokens, anon] = await Promise.all([
    startDaemon(["--max-connections-per-ip", "1"]),
    startDaemon(["--allow-no-origin"], { env: { ALEATORIA_JWT_SECRET: jwtSecret } }),
    startDaemon(anonymous, { env: { ALEATORIA_ANONYMOUS_SECRET: randomSecret() } }),
  ]);
  Object.assign(daemons, { strict, tokens, anonymous: anon });
});

test.afterEach(() => client.closeAll());

const token = (claims) => jwt(jwtSecret,
  { exp: Math.floor(Date.now() / 1000) + 300, ...claims });

/** connect() must reject with `code`, at once, and the client stay closed after one attempt. */
async function refused(url, code, options) {
  const WebSocket = counted(options.WebSocket);
  const attempt = client(url, { ...options, WebSocket });
  const refusals = collect(attempt, "refused");
  await assert.rejects(within(attempt.connect(), 3000, "connect()"),
    (error) => error instanceof AleatoriaError && error.code === code);
  await sleep(300);
  assert.equal(attempt.state, "closed");
  assert.equal(WebSocket.made, 1, "one attempt, no retries");
  assert.deepEqual(refusals.map((r) => r.code), [code]);
  return refusals[0];
}

for (const [runtime, WebSocket] of RUNTIMES) {
  test(`a first connect refused by the server rejects with its code [${runtime}]`, async () => {
    const forbidden = await refused(daemons.strict.url, "forbidden",
      { userId: "alice", WebSocket });
    assert.equal(forbidden.message, "origin not allowed");
    await refused(daemons.tokens.url, "unauthorized", { token: "not-a-token", WebSocket });
    await refused(daemons.tokens.url, "unauthorized",
      { token: token({ sub: "bob", exp: 1000 }), WebSocket });
    await refused(daemons.tokens.url, "invalid_request",
      { token: token({ sub: "bob" }), room: "x".repeat(101), WebSocket });
    await refused(daemons.anonymous.url, "invalid_request", { userId: "carol", WebSocket });
    await refused(daemons.anonymous.url, "unauthorized",
      { reconnectToken: "anon-0.forged", WebSocket });
  });

  test(`with nothing listening, connect() rejects after connectTimeout [${runtime}]`, async () => {
    const port = await freePort();
    const Counted = counted(WebSocket);
    const attempt = client(`ws://127.0.0.1:${port}/ws`,
      { userId: "dora", WebSocket: Counted, connectTimeout: 800 });
    const states = collect(attempt, "state");
    const started = Date.now();
    await assert.rejects(within(attempt.connect(), 3000, "connect()"),
      (error) => error.code === "unreachable");
    assert.ok(Date.now() - started >= 750);
    assert.ok(Counted.made > 1, `tried again (${Counted.made} attempts)`);
    const made = Counted.made;
    await sleep(400);
    assert.equal(Counted.made, made, "no attempt after giving up");
    assert.deepEqual(states, ["connecting", "closed"]);
  });
}

test("a Node app with ws sends an allowed origin, and its fetch reads refusals right", async () => {
  const origin = "https://app.example.com";
  const daemon = await startDaemon(["--anonymous", "--allowed-origin", origin],
    { env: { ALEATORIA_ANONYMOUS_SECRET: randomSecret() } });
  class WebSocket extends RUNTIMES[1][1] {
    constructor(url) {
      super(url, { origin });
    }
  }
  const fetchAs = (url, init) => fetch(url, { ...init, headers: { origin } });
  const ann = await client.open(daemon.url, { WebSocket, fetch: fetchAs });
  assert.match(ann.userId, /^anon-/);
  await refused(daemon.url, "invalid_request", { userId: "bob", WebSocket, fetch: fetchAs });
  // without the origin the question is refused for that, not the upgrade's reason
  await refused(daemon.url, "forbidden", { userId: "bob", WebSocket });
  await daemon.stop();
});

test("a first connect over the connections an address may hold rejects rate_limited", async () => {
  const held = createConnection(daemons.strict.port, "127.0.0.1"); // a handshake that takes its time
  await new Promise((resolve) => held.on("connect", resolve));
  try {
    for (const [runtime, WebSocket] of RUNTIMES) {
      await refused(daemons.strict.url, "rate_limited", { userId: `over-${runtime}`, WebSocket });
    }
  } finally {
    held.destroy();
  }
});

test("getToken gives each reconnect a fresh token; a fixed one that expired is surfaced, not retried", async () => {
  const expiry = Math.floor(Date.now() / 1000) + 2;
  const fresh = [];
  const fixed = [];
  for (const [runtime, WebSocket] of RUNTIMES) {
    let calls = 0;
    const getToken = async () => {
      calls += 1;
      return token({ sub: `fresh-${runtime}`, exp: Math.floor(Date.now() / 1000) + 2 });
    };
    const one = client(daemons.tokens.url, { getToken, WebSocket });
    fresh.push({ client: one, calls: () => calls });
    const Counted = counted(WebSocket);
    const two = client(daemons.tokens.url,
      { token: token({ sub: `fixed-${runtime}`, exp: expiry }), WebSocket: Counted });
    fixed.push({ client: two, made: () => Counted.made, refusals: collect(two, "refused") });
  }
  await Promise.all([...fresh, ...fixed].map(({ client: c }) => within(c.connect(), 3000)));
  assert.deepEqual(fresh.map(({ client: c }) => c.userId), ["fresh-node", "fresh-ws"]);
  assert.deepEqual(fixed.map(({ client: c }) => c.userId), ["fixed-node", "fixed-ws"]);
  await sleep(expiry * 1000 + 200 - Date.now());
  for (const { client: c } of [...fresh, ...fixed]) c._socket.close(4000, "a blip");
  await until(() => fresh.every(({ client: c, calls }) => c.state === "open" && calls() === 2),
    3000, "reconnected with fresh tokens");
  await until(() => fixed.every(({ client: c }) => c.state === "closed"), 3000, "gave up");
  await sleep(300);
  for (const { made, refusals } of fixed) {
    assert.equal(made(), 2, "no attempt after the refusal");
    assert.deepEqual(refusals.map((r) => r.code), ["unauthorized"]);
  }
  await Promise.all(fresh.map(({ client: c }) => c.getRooms()));

  const failing = client(daemons.tokens.url, { getToken: () => Promise.reject(new Error("down")) });
  await assert.rejects(within(failing.connect(), 3000), (error) => error.code === "no_token");
  assert.equal(failing.state, "closed");
  const hanging = client(daemons.tokens.url, { getToken: () => new Promise(() => {}),
    openTimeout: 300 });
  await assert.rejects(within(hanging.connect(), 3000), (error) => error.code === "no_token");
});

for (const [runtime, WebSocket] of RUNTIMES) {
  test(`anonymous, it comes back as itself, with its direct messages [${runtime}]`, async () => {
    const { url } = daemons.anonymous;
    const ann = client(url, { WebSocket });
    const identities = collect(ann, "identity");
    await within(ann.connect(), 3000, "connect()");
    assert.match(ann.userId, /^anon-/, "known once connect() resolves");
    assert.deepEqual(identities, [{ userId: ann.userId, reconnectToken: ann.reconnectToken }]);
    const bea = await client.open(url, { WebSocket });
    await bea.write(ann.userId, "before");
    const chats = collect(ann, "chat_message");
    const welcomes = collect(ann, "welcome");
    const states = collect(ann, "state");
    const who = ann.userId;
    ann._socket.close(4000, "a blip");
    await until(() => ann.state === "reconnecting");
    await bea.write(who, "while away");
    await until(() => chats.some((m) => m.payload.content === "while away"));
    assert.equal(ann.userId, who);
    assert.deepEqual(welcomes.map((w) => w.payload.userId), [who]);
    assert.deepEqual(states, ["reconnecting", "open"]);
    const dms = await ann.getDirectMessages(bea.userId);
    assert.deepEqual(dms.map((m) => m.payload.content), ["before", "while away"]);

    const saved = { reconnectToken: ann.reconnectToken, positions: ann.getPositions() };
    ann.close();
    await bea.write(who, "after the reload");
    const reloaded = client(url, { WebSocket, ...saved });
    const replayed = collect(reloaded, "chat_message");
    await within(reloaded.connect(), 3000, "connect()");
    assert.equal(reloaded.userId, who);
    await until(() => replayed.length === 1);
    assert.equal(replayed[0].payload.content, "after the reload");
  });
}

test("a reconnect token the server no longer takes is surfaced, not retried", async () => {
  const daemon = daemons.anonymous;
  const watched = [];
  for (const [, WebSocket] of RUNTIMES) {
    const Counted = counted(WebSocket);
    const anon = await client.open(daemon.url, { WebSocket: Counted });
    watched.push({ anon, made: () => Counted.made, refusals: collect(anon, "refused") });
  }
  await daemon.stop();
  daemons.anonymous = await startDaemon(anonymous,  // another secret: the old tokens are void
    { env: { ALEATORIA_ANONYMOUS_SECRET: randomSecret() }, port: daemon.port });
  await until(() => watched.every(({ anon }) => anon.state === "closed"), 5000, "gave up");
  const made = watched.map(({ made: m }) => m());
  await sleep(300);
  for (const [n, { refusals, made: m }] of watched.entries()) {
    assert.deepEqual(refusals.map((r) => r.code), ["unauthorized"]);
    assert.equal(m(), made[n], "no attempt after the refusal");
  }
});

test("without a WebSocket to use, connect() says what to do, not 'not a constructor'", async () => {
  const saved = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    const bare = new Client("ws://127.0.0.1:9/ws", { userId: "ann" });
    await assert.rejects(bare.connect(), (error) => error.code === "unsupported" &&
      /--experimental-websocket/.test(error.message) && /ws package/.test(error.message));
  } finally {
    globalThis.WebSocket = saved;
  }
});
