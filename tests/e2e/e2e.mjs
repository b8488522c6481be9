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
    "--port", `tcp:${port}:interface=127.0.0.1`, ...options], /Listening on \S+:\d+/, env);
  return `http://127.0.0.1:${port}/`;
}

async function page(browser, url, name) {
  const context = await browser.newContext({ permissions: ["camera"] });
  const tab = await context.newPage();
  tab.on("pageerror", (error) => console.error(`[${name}] page error: ${error.message}`));
  tab.on("console", (message) => {
    if (message.type() === "warning" || message.type() === "error") {
      console.error(`[${name}] ${message.text()}`);
    }
  });
  await tab.goto(url);
  await tab.fill("#name", name);
  await tab.click("#connect");
  await tab.waitForSelector("#app:not([hidden])");
  await tab.waitForFunction(() => document.querySelector("#connection").value === "open");
  return tab;
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

async function chatBothWays(a, b) {
  await a.fill("#call-input", "hello from a");
  await a.press("#call-input", "Enter");
  await b.waitForSelector('#call-log li:has-text("hello from a")');
  await b.fill("#call-input", "hello from b");
  await b.click("#call-send");
  await a.waitForSelector('#call-log li:has-text("hello from b")');
}

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
  const url = await daemon(8085 + Math.floor(Math.random() * 1000));
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
      assert.equal(await a.textContent("#partner"), "bea");
      assert.equal(await b.textContent("#partner"), "ann");
      await videoPlays(a);
      await videoPlays(b);
      await chatBothWays(a, b);
      await a.screenshot({ path: screenshot, fullPage: true });
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
      assert.equal(await a.textContent("#partner"), "cid");
      await b.waitForSelector('#call-status[data-state="ended"]');
      assert.match(await b.textContent("#call-status"), /ann left \(skipped\)/);
      await videoPlays(c);
    });

  await scenario("a tab closed: its partner sees the call end within 2 s", async () => {
    const closing = Date.now();
    await c.close();
    await a.waitForSelector('#call-status[data-state="ended"]', { timeout: 2000 });
    assert.ok(Date.now() - closing <= 2000);
    assert.match(await a.textContent("#call-status"), /cid left \(disconnected\)/);
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

  await scenario("at phone width, from the keyboard alone", async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 740 },
      permissions: ["camera"] });
    const phone = await context.newPage();
    await phone.goto(url);
    await phone.focus("#name");
    await phone.fill("#name", "fay");
    await phone.keyboard.press("Enter");
    await phone.waitForSelector("#app:not([hidden])");
    for (let n = 0; n < 20; n++) {
      if (await phone.evaluate(() => document.activeElement.id) === "start") break;
      await phone.keyboard.press("Tab");
    }
    assert.equal(await phone.evaluate(() => document.activeElement.id), "start");
    await phone.keyboard.press("Enter");
    await phone.waitForSelector('#call-status[data-state="waiting"]');
    const overflow = await phone.evaluate(() =>
      document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
    await context.close();
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
