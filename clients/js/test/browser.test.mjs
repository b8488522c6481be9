// The client in a browser (Debian's Chromium, driven by playwright-core),
// against real daemons: a browser's WebSocket fires `error` then `close`
// and never shows a refusal's status, as Node's does not; the client
// behaves the same there.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { chromium } from "playwright-core";

import { freePort, randomSecret, startDaemon } from "./daemons.mjs";

let browser;
const daemons = {};

before(async () => {
  const [own, anonymous] = await Promise.all([
    startDaemon(["--demo"]),
    startDaemon(["--demo", "--anonymous"], { env: { ALEATORIA_ANONYMOUS_SECRET: randomSecret() } }),
  ]);
  const [other, friendly] = await Promise.all([startDaemon([]),
    startDaemon(["--allowed-origin", `http://127.0.0.1:${own.port}`])]);
  Object.assign(daemons, { own, anonymous, other, friendly });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"] });
});

after(() => browser && browser.close());

/**
 * A page of `daemon`'s own origin (the demo, its content policy set aside:
 * it would keep the page to its own daemon), with the client loaded as
 * `window.aleatoria`.
 */
async function pageOf(daemon) {
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${daemon.port}/`);
  await page.evaluate(async () => {
    window.aleatoria = await import("/aleatoria.js");
  });
  return page;
}

/** How `connect()` of a Client(url, options) settles in `page`, and the attempts it made. */
function connectIn(page, url, options) {
  return page.evaluate(async ([url, options]) => {
    let made = 0;
    class Counted extends WebSocket {
      constructor(...args) {
        super(...args);
        made += 1;
      }
    }
    const client = new window.aleatoria.Client(url, { reconnect: { initial: 50, max: 200 },
      openTimeout: 2000, WebSocket: Counted, ...options });
    const refused = [];
    client.addEventListener("refused", (e) => refused.push(e.detail.code));
    const started = Date.now();
    try {
      await client.connect();
      const echo = await client.say(client.options.room || "Lobby", "from a browser");
      client.close();
      return { outcome: "open", userId: client.userId, offset: echo.offset, made };
    } catch (error) {
      return { outcome: error.code, refused, made, state: client.state, ms: Date.now() - started };
    }
  }, [url, options]);
}

test("in a browser, a page of an allowed origin connects, and its refused connects settle with the server's code", async () => {
  const page = await pageOf(daemons.anonymous);
  const url = daemons.anonymous.url;
  const open = await connectIn(page, url, {});
  assert.equal(open.outcome, "open");
  assert.match(open.userId, /^anon-/);
  assert.equal(open.offset, 1);
  for (const [options, code] of [[{ userId: "carol" }, "invalid_request"],
    [{ reconnectToken: "anon-0.forged" }, "unauthorized"],
    [{ room: "x".repeat(101) }, "invalid_request"]]) {
    const settled = await connectIn(page, url, options);
    assert.deepEqual(settled, { outcome: code, refused: [code], made: 1, state: "closed",
      ms: settled.ms }, JSON.stringify(options));
  }
});

test("in a browser, a page of another origin: allowed, it reads the refusal; not, or nothing listening, it settles unreachable", async () => {
  const page = await pageOf(daemons.own);
  const allowed = await connectIn(page, daemons.friendly.url, { userId: "dora" });
  assert.deepEqual([allowed.outcome, allowed.offset], ["open", 1]);
  const told = await connectIn(page, daemons.friendly.url, { userId: "dora", room: "x".repeat(101) });
  assert.deepEqual([told.outcome, told.refused, told.made], ["invalid_request", ["invalid_request"], 1]);
  const refused = await connectIn(page, daemons.other.url, { userId: "dora", connectTimeout: 800 });
  assert.equal(refused.outcome, "unreachable", "the 403 is the browser's to see, not the page's");
  assert.ok(refused.made > 1 && refused.ms >= 750, JSON.stringify(refused));
  const nobody = await connectIn(page, `ws://127.0.0.1:${await freePort()}/ws`,
    { userId: "dora", connectTimeout: 800 });
  assert.equal(nobody.outcome, "unreachable");
  assert.equal(nobody.state, "closed");
});

test("in a browser, the daemon down for a while then back: the client reconnects", async () => {
  let daemon = await startDaemon(["--demo"]);
  const page = await pageOf(daemon);
  await page.evaluate(async (url) => {
    window.made = 0;
    class Counted extends WebSocket {
      constructor(...args) {
        super(...args);
        window.made += 1;
      }
    }
    const client = window.client = new window.aleatoria.Client(url,
      { userId: "erin", reconnect: { initial: 50, max: 200 }, openTimeout: 2000,
        WebSocket: Counted });
    window.states = [];
    client.addEventListener("state", (e) => window.states.push(e.detail));
    await client.connect();
  }, daemon.url);
  await daemon.stop();
  await page.waitForFunction(() => window.client.state === "reconnecting");
  // several attempts fail meanwhile, each with an error and a close
  await page.waitForFunction(() => window.made >= 4, null, { timeout: 30000 });
  daemon = await startDaemon(["--demo"], { port: daemon.port });
  await page.waitForFunction(() => window.client.state === "open", null, { timeout: 30000 });
  const { states, echo } = await page.evaluate(async () => ({ states: window.states,
    echo: (await window.client.say("Lobby", "back")).payload.content }));
  assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
  assert.equal(echo, "back");
  await page.evaluate(() => window.client.close());
  await daemon.stop();
});
