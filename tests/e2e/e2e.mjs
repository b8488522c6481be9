// The demo app in a real browser: Debian's Chromium, driven by
// playwright-core, with a fake camera. Run by netns.sh, inside a private
// network namespace (loopback and a veth pair that leads nowhere): WebRTC
// never sends a packet off this machine.
//
//   tests/e2e/netns.sh node tests/e2e/e2e.mjs
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const twistd = process.env.ALEATORIA_TWISTD || path.join(root, ".venv/bin/twistd");
// a call in progress, as README.rst shows it (docs/call.png is a copy)
const screenshot = process.env.E2E_SCREENSHOT || path.join(root, "tests/e2e/output/call.png");
const processes = [];
let failures = 0;

const output = path.dirname(screenshot);
mkdirSync(output, { recursive: true });

function start(command, args, ready, env = {}) {
  const child = spawn(command, args, { cwd: mkdtempSync(path.join(tmpdir(), "e2e-")),
    env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  processes.push(child);
  // each process's output, for when a scenario fails
  const saved = createWriteStream(path.join(output, `${path.basename(command)}-${processes.length}.log`));
  child.stdout.pipe(saved);
  let log = "";
  return new Promise((resolve, reject) => {
    const heard = (chunk) => {
      log += chunk;
      if (ready.test(log)) resolve(child);
    };
    child.stdout.on("data", heard);
    child.stderr.on("data", heard);
    child.on("exit", (code) => reject(new Error(`${command} exited (${code}):\n${log}`)));
  });
}

async function daemon(port, ...options) {
  const env = typeof options.at(-1) === "object" ? options.pop() : {};
  await start(twistd, ["--nodaemon", "--pidfile=", "aleatoria", "--demo",
    "--port", `tcp:${port}:interface=127.0.0.1`, ...options], new RegExp(`Listening on \\S+:${port}\\b`),
  env);
  return `http://127.0.0.1:${port}/`;
}

/** A page of the demo, as `name` (a daemon that wants names) or a stranger (`--anonymous`). */
async function page(browser, url, name, { viewport } = {}) {
  const context = await browser.newContext({ permissions: ["camera"], viewport });
  const tab = await context.newPage();
  tab.on("pageerror", (error) => console.error(`[${name}] page error: ${error.message}`));
  tab.on("console", (message) => {
    if (message.type() === "warning" || message.type() === "error") {
      console.error(`[${name}] ${message.text()}`);
    }
  });
  await tab.goto(url);
  if (name) {
    await tab.waitForSelector("#connect-form:not([hidden])");
    // before Connect there is nothing to click but Connect
    assert.equal(await tab.evaluate(() => document.querySelector("#app").hidden &&
      document.querySelector("#app").inert), true);
    await tab.fill("#name", name);
    await tab.click("#connect");
  }
  await tab.waitForSelector('#connection[data-state="open"]');
  await tab.waitForSelector("#app:not([hidden]):not([inert])");
  return tab;
}

/** A box on the page: {x, y, width, height}. */
const box = async (tab, selector) => (await tab.$(selector)).boundingBox();

function inside(inner, outer) {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width &&
    inner.y + inner.height <= outer.y + outer.height;
}

/** The partner's video in the call view: large, with the self-view inset inside it. */
async function callView(tab) {
  const [stage, remote, local] = await Promise.all(["#call .stage", "#remote-video",
    "#local-video"].map((selector) => box(tab, selector)));
  const width = await tab.evaluate(() => document.documentElement.clientWidth);
  assert.ok(remote.width >= Math.min(0.9 * width, 600), `the partner's video is ${remote.width} px wide`);
  assert.ok(inside(local, stage) && inside(remote, stage), "the self-view is not inset in the video");
  assert.ok(local.width < remote.width / 2.5, `the self-view is ${local.width} px of ${remote.width}`);
  const overflow = await tab.evaluate(() =>
    document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the window`);
}

/** The mean brightness (0-255) of the partner's video as shown now. */
function brightness(tab) {
  return tab.evaluate(() => {
    const video = document.querySelector("#remote-video");
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 48;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0, 64, 48);
    const { data } = context.getImageData(0, 0, 64, 48);
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += (data[i] + data[i + 1] + data[i + 2]) / 3;
    return sum / (data.length / 4);
  });
}

/** Wait until `condition(value)` holds for `read()`, failing with the last value after 20 s. */
async function until(read, condition, what) {
  const deadline = Date.now() + 20000;
  let value;
  while (!condition(value = await read())) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${value}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return value;
}

const state = (tab) => tab.getAttribute("#call-status", "data-state");
async function connected(tab, timeout = 20000) {
  try {
    await tab.waitForSelector('#call-status[data-state="connected"]', { timeout });
  } catch (error) {
    const pc = await tab.evaluate(() => {
      const pc = window.demo.caller && window.demo.caller.pc;
      return pc ? `${pc.signalingState}/${pc.iceConnectionState}/${pc.connectionState}` +
        ` local ${Boolean(pc.localDescription)} remote ${Boolean(pc.remoteDescription)}` +
        ` gathering ${pc.iceGatheringState} closed? ${pc.signalingState === "closed"}` : "none";
    });
    const trace = await tab.evaluate(async () => {
      const pc = window.demo.caller.pc;
      const counts = {};
      (await pc.getStats()).forEach((r) => { counts[r.type] = (counts[r.type] || 0) + 1; });
      return [`polite ${window.demo.caller.polite} stats ${JSON.stringify(counts)}`,
        ...window.demo.trace.slice(-12)].join("\n  ");
    });
    throw new Error(`not connected (${pc}): ${await tab.textContent("#call-status")}\n  ${trace}`);
  }
}

async function framesDecoded(tab) {
  return tab.evaluate(async () => {
    const stats = await window.demo.caller.pc.getStats();
    let frames = 0;
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") frames += report.framesDecoded || 0;
    });
    return frames;
  });
}

async function videoPlays(tab) {
  // the partner's video plays: frames arrive and are decoded
  const deadline = Date.now() + 20000;
  let frames = 0;
  while ((frames = await framesDecoded(tab)) === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(frames > 0, `no frames decoded: ${await tab.textContent("#call-status")}`);
}

/** The call's chat, both ways: call_message, shown as You and Stranger, kept nowhere. */
async function chatBothWays(a, b) {
  await a.fill("#call-input", "hello from a");
  await a.press("#call-input", "Enter");
  await b.waitForSelector('#call-log li:text-is("Stranger: hello from a")');
  await a.waitForSelector('#call-log li.me:text-is("You: hello from a")');
  await b.fill("#call-input", "hello from b");
  await b.click("#call-send");
  await a.waitForSelector('#call-log li:text-is("Stranger: hello from b")');
  for (const tab of [a, b]) {
    const { conversations } = await tab.evaluate(() => window.demo.client.getConversations());
    assert.deepEqual(conversations, [], "the call's chat went to the inbox");
    assert.equal(await tab.$$eval("#conversations li", (items) => items.length), 0);
  }
}

/**
 * A TCP proxy on a free port in front of `port`: a page loaded through it
 * talks to the daemon through it alone. `cut()` resets every connection
 * (no close frame: a dropped network) and refuses new ones until
 * `restore()`.
 */
async function tcpProxy(port) {
  const sockets = new Set();
  let down = false;
  const server = createServer((incoming) => {
    if (down) {
      incoming.resetAndDestroy();
      return;
    }
    const upstream = createConnection(port, "127.0.0.1");
    for (const socket of [incoming, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        incoming.destroy();
        upstream.destroy();
      });
    }
    incoming.pipe(upstream);
    upstream.pipe(incoming);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    cut() {
      down = true;
      for (const socket of sockets) socket.resetAndDestroy();
    },
    restore() {
      down = false;
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

/** The ICE username fragment of `tab`'s side of the call: a restart changes it. */
const ufrag = (tab) => tab.evaluate(() =>
  /a=ice-ufrag:(\S+)/.exec(window.demo.caller.pc.localDescription.sdp)[1]);

async function scenario(name, run) {
  const started = Date.now();
  try {
    await run();
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failures += 1;
    console.log(`not ok - ${name}\n${error.stack}`);
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--disable-features=WebRtcHideLocalIpsWithMdns"],
  });
  // the same few pages meet again and again here: no pause before a rematch
  // (the rule has its own tests, tests/unit/test_pairing_rules.py and tests/integration/test_pairing_rules_across_daemons.py)
  const url = await daemon(8085 + Math.floor(Math.random() * 1000), "--rematch-after", "0");
  let a, b, c;

  await scenario("two pages press Start: paired, connected, video plays, chat both ways",
    async () => {
      a = await page(browser, url, "ann");
      b = await page(browser, url, "bea");
      await a.click("#start");
      await a.waitForSelector('#call-status[data-state="waiting"]');
      await b.click("#start");
      await connected(a);
      await connected(b);
      assert.equal(await a.textContent("#partner"), "Stranger");
      assert.equal(await b.textContent("#partner"), "Stranger");
      await videoPlays(a);
      await videoPlays(b);
      await chatBothWays(a, b);
    });

  await scenario("both sides offering at once (glare) still converges", async () => {
    const renegotiate = (tab) => tab.evaluate(() => {
      window.demo.caller.pc.addTransceiver("audio", { direction: "recvonly" });
    });
    await Promise.all([renegotiate(a), renegotiate(b)]);
    const settled = (tab) => tab.waitForFunction(() => {
      const pc = window.demo.caller.pc;
      return pc.signalingState === "stable" && pc.getTransceivers().length >= 3 &&
        pc.getTransceivers().every((t) => t.mid !== null);
    }, null, { timeout: 20000 });
    try {
      await Promise.all([settled(a), settled(b)]);
    } catch (error) {
      const describe = (tab) => tab.evaluate(() => {
        const pc = window.demo.caller.pc;
        return `${pc.signalingState} ${pc.getTransceivers().map((t) => `${t.mid}:${t.direction}`)}`;
      });
      throw new Error(`not settled: ann ${await describe(a)}; bea ${await describe(b)}`);
    }
    const counts = await Promise.all([a, b].map((tab) =>
      tab.evaluate(() => window.demo.caller.pc.getTransceivers().length)));
    assert.equal(counts[0], counts[1]);
    assert.equal(await state(a), "connected");
    await videoPlays(a);
  });

  await scenario("Next with a third page waiting: new partners, the old one sees the end",
    async () => {
      c = await page(browser, url, "cid");
      await c.click("#start");
      await c.waitForSelector('#call-status[data-state="waiting"]');
      await a.click("#next");
      await connected(a);
      await connected(c);
      assert.equal(await a.evaluate(() => window.demo.caller.peerId), "cid");
      // the skipped page is back in the queue by itself
      await b.waitForSelector('#call-status[data-state="waiting"]');
      assert.match(await b.textContent("#call-status"), /moved on/);
      await videoPlays(c);
    });

  await scenario("a tab closed: its partner sees the call end within 2 s", async () => {
    const closing = Date.now();
    await c.close();
    await a.waitForSelector('#call-status[data-state="ended"]', { timeout: 2000 });
    assert.ok(Date.now() - closing <= 2000);
    assert.match(await a.textContent("#call-status"), /The stranger left/);
  });

  await scenario("the page skipped by Next was put back in the queue: Next finds it", async () => {
    await a.click("#next");
    await connected(a);
    await connected(b);
    assert.equal(await a.evaluate(() => window.demo.caller.peerId), "bea");
    await videoPlays(b);
  });

  await scenario("interests: two pages that share one are paired, and are told which",
    async () => {
      const d = await page(browser, url, "dee");
      const e = await page(browser, url, "eve");
      await e.fill("#interests", "Chess, jazz");
      await e.click("#start");
      await e.waitForSelector('#call-status[data-state="waiting"]');
      await d.fill("#interests", "chess");
      await d.click("#start");
      await connected(d);
      await connected(e);
      assert.equal(await d.evaluate(() => window.demo.caller.peerId), "eve");
      assert.equal(await d.textContent("#partner"), "Stranger (you both like chess)");
      assert.equal(await e.textContent("#partner"), "Stranger (you both like chess)");
      await d.close();
      await e.close();
    });

  await scenario("Report in a call: the reporter moves on, the reported sees the end, " +
    "and the two never meet again; Block moves on to the next stranger", async () => {
    const r = await page(browser, url, "rae");
    const s = await page(browser, url, "sol");
    for (const tab of [r, s]) {
      assert.equal(await tab.isDisabled("#report"), true, "Report with nobody to report");
      assert.equal(await tab.isDisabled("#block"), true);
    }
    await r.click("#start");
    await r.waitForSelector('#call-status[data-state="waiting"]');
    await s.click("#start");
    await connected(r);
    await connected(s);
    await r.click("#report");
    await r.waitForSelector("#report-dialog[open]");
    // a reason is required: the dialog stays open without one
    await r.click("#report-send");
    assert.equal(await r.isVisible("#report-dialog"), true);
    await r.check('#report-dialog input[name="reason"][value="harassment"]');
    await r.fill("#report-details", "rude from the start");
    await r.click("#report-send");
    // the reported page: the call is over, and it hears only that
    await s.waitForSelector('#call-status[data-state="ended"]');
    assert.match(await s.textContent("#call-status"), /The stranger left/);
    // the reporter: out of the call, on to the next stranger (none yet: it waits)
    await r.waitForSelector('#call-status[data-state="waiting"]');
    assert.match(await r.textContent("#call-status"), /^Stranger reported and blocked\. Waiting/);
    assert.equal(await r.isVisible("#report-dialog"), false);
    for (const tab of [r, s]) {
      assert.equal(await tab.evaluate(() => window.demo.caller.peerId), null);
      assert.equal(await tab.textContent("#partner"), "No partner yet");
      assert.equal(await tab.isDisabled("#report"), true);
    }
    assert.deepEqual(await r.evaluate(() => window.demo.client.getBlocked()), ["sol"]);
    // this daemon pairs two who met again at once (--rematch-after 0), but not these
    await s.click("#next");
    await s.waitForSelector('#call-status[data-state="waiting"]');
    assert.equal(await r.evaluate(() => window.demo.caller.peerId), null);

    // a third page meets one of the two, blocks it, and moves on to the other
    const t = await page(browser, url, "tom");
    await t.click("#start");
    await connected(t);
    const first = await t.evaluate(() => window.demo.caller.peerId);
    const [blocked, other] = first === "rae" ? [r, s] : [s, r];
    await connected(blocked);
    await t.click("#block");
    await blocked.waitForSelector('#call-status[data-state="ended"]');
    assert.match(await blocked.textContent("#call-status"), /The stranger left/);
    await t.waitForFunction((peer) => window.demo.caller.peerId === peer,
      first === "rae" ? "sol" : "rae");
    await connected(t);
    await connected(other);
    assert.deepEqual(await t.evaluate(() => window.demo.client.getBlocked()), [first]);
    for (const tab of [r, s, t]) await tab.context().close();
  });

  await scenario("room chat between two pages, history shown after a reload", async () => {
    await a.fill("#room-input", "anyone in the lobby?");
    await a.press("#room-input", "Enter");
    await b.waitForSelector('#room-log li:has-text("ann: anyone in the lobby?")');
    await b.reload();
    await b.click("#connect");
    await b.waitForSelector('#room-log li:has-text("ann: anyone in the lobby?")');
    await b.waitForSelector('#members li:has-text("ann")');
  });

  await scenario("at phone width, from the keyboard alone: a call in the phone layout",
    async () => {
      const viewport = { width: 375, height: 740 };
      const context = await browser.newContext({ viewport, permissions: ["camera"] });
      const phone = await context.newPage();
      await phone.goto(url);
      await phone.waitForSelector("#connect-form:not([hidden])");
      await phone.focus("#name");
      await phone.fill("#name", "fay");
      await phone.keyboard.press("Enter");
      await phone.waitForSelector("#app:not([hidden]):not([inert])");
      for (let n = 0; n < 20; n++) {
        if (await phone.evaluate(() => document.activeElement.id) === "start") break;
        await phone.keyboard.press("Tab");
      }
      assert.equal(await phone.evaluate(() => document.activeElement.id), "start");
      await phone.keyboard.press("Enter");
      await phone.waitForSelector('#call-status[data-state="waiting"]');
      const other = await page(browser, url, "gus", { viewport });
      await other.click("#start");
      await connected(phone);
      await videoPlays(phone);
      await callView(phone);
      for (const id of ["#mute", "#camera", "#next", "#hangup", "#block", "#report",
        "#call-input"]) {
        const { x, y, width, height } = await box(phone, id);
        assert.ok(x >= 0 && x + width <= viewport.width, `${id} is off the screen`);
        assert.ok(height >= 24, `${id} is ${height} px high: too small for a finger`);
      }
      await phone.screenshot({ path: path.join(output, "phone.png") });
      await phone.click("#hangup");
      await other.waitForSelector('#call-status[data-state="ended"]');
      await context.close();
      await other.context().close();
    });

  await scenario("named users: another tab takes over, and the first says so for good",
    async () => {
      const first = await page(browser, url, "ivy");
      const second = await page(browser, url, "ivy");
      await first.waitForSelector('#connection[data-state="closed"]');
      await first.waitForFunction(() => window.demo.client.state === "closed");
      assert.match(await first.textContent("#connection"), /another tab/);
      assert.equal(await first.evaluate(() => document.querySelector("#app").inert), true);
      assert.equal(await second.getAttribute("#connection", "data-state"), "open");
      await first.context().close();
      await second.context().close();
    });

  await scenario("a ban, refused connects (403, 400): said in words, no reconnect loop",
    async () => {
      const token = randomBytes(32).toString("hex");
      const api = 10100 + Math.floor(Math.random() * 400);
      const banning = await daemon(10600 + Math.floor(Math.random() * 400),
        "--api-port", `tcp:${api}:interface=127.0.0.1`, { ALEATORIA_API_TOKEN: token });
      const zed = await page(browser, banning, "zed");
      let attempts = 0;
      zed.on("websocket", () => { attempts += 1; });
      const answer = await fetch(`http://127.0.0.1:${api}/api/v1/bans`, { method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ userId: "zed", seconds: 600 }) });
      assert.equal(answer.status, 201, await answer.text());
      // the open connection is closed (4003): the page says why and stays closed
      await zed.waitForSelector('#connection[data-state="closed"]');
      assert.match(await zed.textContent("#connection"), /banned/);
      assert.equal(await zed.evaluate(() => window.demo.client.state), "closed");
      assert.equal(await zed.evaluate(() => document.querySelector("#app").inert), true);
      assert.equal(attempts, 0);
      // connecting again is refused (403 banned): said once, nothing tried again
      await zed.click("#connect");
      await zed.waitForFunction(() => window.demo.client.state === "closed");
      assert.match(await zed.textContent("#connection"), /banned from this server for 10 more minutes/);
      assert.equal(attempts, 1);
      // and a refused connect of another kind (400: a reserved name)
      await zed.fill("#name", "system");
      await zed.click("#connect");
      await zed.waitForFunction(() => window.demo.client.state === "closed");
      assert.match(await zed.textContent("#connection"),
        /The server refused the connection \(userId system is reserved\)/);
      assert.equal(await zed.getAttribute("#connection", "data-state"), "closed");
      assert.equal(attempts, 2);
      await zed.context().close();
    });

  await scenario("too many connection attempts (429): said in words, no reconnect loop",
    async () => {
      const limited = await daemon(9950 + Math.floor(Math.random() * 40),
        "--connect-rate", "0.001", "--connect-burst", "20");
      const context = await browser.newContext({ permissions: ["camera"] });
      const tab = await context.newPage();
      let attempts = 0;
      tab.on("websocket", () => { attempts += 1; });
      await tab.goto(limited);
      await tab.waitForSelector("#connect-form:not([hidden])");
      // the page's address spends its attempts (this process is on the same one)
      let status = 0;
      for (let n = 0; n < 40 && status !== 429; n++) status = (await fetch(`${limited}ws`)).status;
      assert.equal(status, 429);
      await tab.fill("#name", "kim");
      await tab.click("#connect");
      await tab.waitForFunction(() => window.demo.client.state === "closed");
      assert.match(await tab.textContent("#connection"), /Too many connections/);
      assert.equal(await tab.evaluate(() => document.querySelector("#app").hidden), true);
      // one attempt, or two: the gate refuses the upgrade's new TCP connection,
      // but the client's look at /ws may ride a kept-alive one, which the gate
      // let in before, and hear 426 (it would be admitted) -- then it tries once more
      assert.ok(attempts >= 1 && attempts <= 2, `${attempts} attempts`);
      await context.close();
    });

  await scenario("anonymous: strangers without names, the call view, mute, camera off, chat",
    async () => {
      const anonymous = await daemon(9400 + Math.floor(Math.random() * 90), "--anonymous");
      const p = await page(browser, anonymous);
      const q = await page(browser, anonymous);
      for (const tab of [p, q]) {
        assert.equal(await tab.isVisible("#name"), false);
        assert.match(await tab.evaluate(() => window.demo.client.userId), /^anon-/);
      }
      await p.click("#start");
      await p.waitForSelector('#call-status[data-state="waiting"]');
      await q.click("#start");
      await connected(p);
      await connected(q);
      for (const tab of [p, q]) {
        assert.equal(await tab.textContent("#partner"), "Stranger");
        assert.doesNotMatch(await tab.textContent("#call"), /anon-/);
        await videoPlays(tab);
        await callView(tab);
      }
      await chatBothWays(p, q);
      // mute: p's microphone track is off in the call
      await p.click("#mute");
      assert.equal(await p.getAttribute("#mute", "aria-pressed"), "true");
      assert.equal(await p.evaluate(() => window.demo.caller.pc.getSenders()
        .find((sender) => sender.track && sender.track.kind === "audio").track.enabled), false);
      // camera off: q's decoded frames of p turn black, and keep coming
      const lit = await until(() => brightness(q), (value) => value > 40, "p's video is dark");
      console.log(`# brightness of p's video at q: ${lit}`);
      await p.click("#camera");
      assert.equal(await p.getAttribute("#camera", "aria-pressed"), "true");
      const before = await framesDecoded(q);
      await until(() => brightness(q), (value) => value < 8, `p's camera is off (was ${lit})`);
      await until(() => framesDecoded(q), (frames) => frames > before + 10, "q's frames");
      await p.click("#camera");
      await until(() => brightness(q), (value) => value > 40, "p's camera is back on");
      await p.fill("#call-input", "nice to meet you");
      await p.press("#call-input", "Enter");
      await q.waitForSelector('#call-log li:text-is("Stranger: nice to meet you")');
      // README.rst's picture: the header and the call view
      const bottom = await q.evaluate(() =>
        document.querySelector("#call").getBoundingClientRect().bottom + window.scrollY);
      await q.screenshot({ path: screenshot, fullPage: true,
        clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom) + 16 } });

      // Next: both back in the queue -- two newcomers find one each
      await q.click("#next");
      await q.waitForSelector('#call-status[data-state="waiting"]');
      await p.waitForSelector('#call-status[data-state="waiting"]');
      assert.match(await p.textContent("#call-status"), /moved on/);
      const found = [];
      for (const tab of [await page(browser, anonymous), await page(browser, anonymous)]) {
        await tab.click("#start");
        await connected(tab);
        found.push(await tab.evaluate(() => window.demo.caller.peerId));
        await tab.context().close();
      }
      const users = await Promise.all([p, q].map((tab) =>
        tab.evaluate(() => window.demo.client.userId)));
      assert.deepEqual(found.sort(), [...users].sort());

      // a reload keeps the stranger's identity (its reconnect token, this tab's only)
      await p.reload();
      await p.waitForSelector('#connection[data-state="open"]');
      assert.equal(await p.evaluate(() => window.demo.client.userId), users[0]);
      // a token the server refuses (401): the page comes back as a new stranger, once
      await p.evaluate(() => sessionStorage.setItem("aleatoria-token",
        `${window.demo.client.userId}.1.${"0".repeat(32)}`));
      await p.reload();
      await p.waitForSelector('#connection[data-state="open"]');
      const fresh = await p.evaluate(() => window.demo.client.userId);
      assert.match(fresh, /^anon-/);
      assert.notEqual(fresh, users[0]);
      await p.context().close();
      await q.context().close();
    });

  await scenario("on Redis, two pages on two daemons still get a call through", async () => {
    const redisPort = 20000 + Math.floor(Math.random() * 10000);
    await start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1",
      "--save", "", "--appendonly", "no"], /Ready to accept connections/);
    const store = ["--store", "redis", "--redis-host", "127.0.0.1",
      "--redis-port", String(redisPort)];
    const one = await daemon(9100 + Math.floor(Math.random() * 400), ...store);
    const two = await daemon(9500 + Math.floor(Math.random() * 400), ...store);
    const d = await page(browser, one, "dot");
    const e = await page(browser, two, "eve");
    await d.click("#start");
    await d.waitForSelector('#call-status[data-state="waiting"]');
    await e.click("#start");
    await connected(d);
    await connected(e);
    await videoPlays(d);
    await videoPlays(e);
    await chatBothWays(d, e);
  });

  await scenario("a blip: one page's socket cut (no close frame), back within the grace; " +
    "the call and its video go on", async () => {
    const proxy = await tcpProxy(Number(new URL(url).port));
    try {
      const j = await page(browser, proxy.url, "jo");
      const k = await page(browser, url, "kay");
      await j.click("#start");
      await j.waitForSelector('#call-status[data-state="waiting"]');
      await k.click("#start");
      await connected(j);
      await connected(k);
      await videoPlays(j);
      await videoPlays(k);
      for (const tab of [j, k]) await tab.evaluate(() => { window.demo.caller.pc.kept = true; });
      const ufrags = [await ufrag(j), await ufrag(k)];

      proxy.cut();
      await j.waitForSelector('#connection[data-state="reconnecting"]');
      await j.waitForSelector('#call-status[data-state="reconnecting"]');
      assert.equal(await j.textContent("#call-status"), "Reconnecting…");
      assert.equal(await j.textContent("#partner"), "Stranger");
      assert.equal(await state(k), "connected");
      proxy.restore();
      const back = Date.now();
      await j.waitForSelector('#connection[data-state="open"]');
      await connected(j);
      for (const [tab, peer] of [[j, "kay"], [k, "jo"]]) {
        assert.equal(await state(tab), "connected");
        assert.equal(await tab.textContent("#partner"), "Stranger");
        assert.equal(await tab.evaluate(() => window.demo.caller.peerId), peer);
        assert.equal(await tab.evaluate(() => window.demo.caller.pc.kept), true,
          "the call's RTCPeerConnection was replaced");
      }
      // the impolite side restarted ICE: both sides have new credentials
      await until(async () => [await ufrag(j), await ufrag(k)],
        ([uj, uk]) => uj !== ufrags[0] && uk !== ufrags[1], "an ICE restart");
      console.log(`# blip: call resumed and ICE restarted ${Date.now() - back} ms after the return`);
      for (const tab of [j, k]) {
        const before = await framesDecoded(tab);
        await until(() => framesDecoded(tab), (frames) => frames > before + 30,
          `frames after the blip (${before} before)`);
        console.log(`# blip: frames decoded go on from ${before}`);
        assert.equal(await state(tab), "connected");
      }
      await j.context().close();
      await k.context().close();
    } finally {
      proxy.close();
    }
  });

  await scenario("through TURN only: relay candidates alone, video plays both ways",
    async () => {
      // coturn on the veth address (not loopback, which it refuses to relay
      // to); the pages may use nothing but its relays, with the credentials
      // the daemon minted for each call
      const secret = randomBytes(32).toString("hex");
      const turnPort = 3478 + Math.floor(Math.random() * 1000);
      const dir = mkdtempSync(path.join(tmpdir(), "coturn-"));
      await start("turnserver", ["-n", "--listening-ip=10.213.0.1",
        `--listening-port=${turnPort}`, "--relay-ip=10.213.0.1", "--use-auth-secret",
        `--static-auth-secret=${secret}`, "--realm=e2e", "--no-tls", "--no-dtls", "--no-cli",
        "--no-rfc5780", "--log-file=stdout", "--simple-log", "--verbose",
        `--userdb=${dir}/turn.db`, `--pidfile=${dir}/turn.pid`],
      /Total General servers/);
      const relayed = await daemon(9900 + Math.floor(Math.random() * 90),
        "--turn-url", `turn:10.213.0.1:${turnPort}?transport=udp`,
        { ALEATORIA_TURN_SECRET: secret });
      const relayOnly = (tab) => tab.evaluate(() => {
        const Native = window.RTCPeerConnection;
        window.RTCPeerConnection = function (config) {
          return new Native({ ...config, iceTransportPolicy: "relay" });
        };
      });
      const g = await page(browser, relayed, "gil");
      const h = await page(browser, relayed, "hal");
      await relayOnly(g);
      await relayOnly(h);
      await g.click("#start");
      await g.waitForSelector('#call-status[data-state="waiting"]');
      await h.click("#start");
      await connected(g);
      await connected(h);
      await videoPlays(g);
      await videoPlays(h);
      for (const tab of [g, h]) {
        const [policy, username, local, remote] = await tab.evaluate(async () => {
          const pc = window.demo.caller.pc;
          const config = pc.getConfiguration();
          const stats = await pc.getStats();
          let pair = null;
          stats.forEach((r) => {
            if (r.type === "transport" && r.selectedCandidatePairId) {
              pair = stats.get(r.selectedCandidatePairId);
            }
          });
          return [config.iceTransportPolicy, config.iceServers[0].username,
            stats.get(pair.localCandidateId).candidateType,
            stats.get(pair.remoteCandidateId).candidateType];
        });
        assert.equal(policy, "relay");
        assert.match(username, /^\d+:[\w-]+$/);
        assert.deepEqual([local, remote], ["relay", "relay"]);
      }
    });

  await browser.close();
}

try {
  await main();
} catch (error) {
  failures += 1;
  console.log(`not ok - setting up\n${error.stack}`);
} finally {
  for (const child of processes) child.kill("SIGTERM");
}
console.log(failures ? `${failures} scenario(s) failed` : "all scenarios passed");
process.exit(failures ? 1 : 0);
