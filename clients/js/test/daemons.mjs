// What the tests run the client against: real twistd daemons and real
// redis-servers on free loopback ports, and the two WebSocket classes a
// Node app may use -- Node's own (Node 20: --experimental-websocket) and
// the `ws` package.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";

import { WebSocket as WsWebSocket } from "ws";

import { Client } from "../aleatoria.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const twistd = process.env.ALEATORIA_TWISTD || path.join(here, "../../../.venv/bin/twistd");

if (typeof globalThis.WebSocket !== "function") {
  throw new Error("No global WebSocket: on Node 20, run with --experimental-websocket");
}

/** The WebSocket classes every scenario runs with: [name, class]. */
export const RUNTIMES = [["node", globalThis.WebSocket], ["ws", WsWebSocket]];

/**
 * A WebSocket class that counts the sockets made with it (`.made`) and
 * keeps every message they received (`.frames`, parsed).
 */
export function counted(WebSocket) {
  return class Counted extends WebSocket {
    static made = 0;
    static frames = [];

    constructor(...args) {
      super(...args);
      Counted.made += 1;
      this.addEventListener("message", (event) => Counted.frames.push(JSON.parse(event.data)));
    }
  };
}

export function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until `condition()` holds, failing after `ms`. */
export async function until(condition, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  while (!await condition()) {
    if (Date.now() > end) throw new Error(`${what} never held`);
    await sleep(20);
  }
}

/** `promise`, or a rejection if it has not settled within `ms`: a hang fails, not stalls. */
export function within(promise, ms, what = "promise") {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Fires with the detail of the next `type` event of `target`. */
export function next(target, type) {
  return new Promise((resolve) => target.addEventListener(type, (e) => resolve(e.detail),
    { once: true }));
}

/** Every `type` event of `target` from now on, in a list that grows. */
export function collect(target, type) {
  const seen = [];
  target.addEventListener(type, (e) => seen.push(e.detail));
  return seen;
}

export function randomSecret() {
  return randomBytes(32).toString("hex");
}

/** An HS256 JWT. */
export function jwt(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

const running = new Set();

/**
 * A `twistd aleatoria` on a free port (or `port`), serving; `stop()`
 * sends SIGTERM and waits for it to exit. Every one still running is
 * stopped after the file's tests.
 */
/** Wait until the daemon on `port` answers /ready with 200 (on Redis: linked and joined). */
async function ready(port) {
  await until(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200;
    } catch {
      return false;
    }
  }, 15000, `the daemon on ${port} ready`);
}

export async function startDaemon(options = [], { env = {}, port } = {}) {
  port = port || await freePort();
  const child = spawn(twistd, ["--nodaemon", "--pidfile=", "aleatoria",
    "--port", `tcp:${port}:interface=127.0.0.1`,
    "--address-rate", "100000", "--address-burst", "100000",
    "--connect-rate", "100000", "--connect-burst", "100000", ...options],
  { cwd: tmpdir(), env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  let log = "";
  child.stderr.on("data", (chunk) => { log += chunk; });
  await new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      log += chunk;
      if (log.includes("Listening on")) resolve();
    });
    exited.then((code) => reject(new Error(`twistd exited with ${code}:\n${log}`)));
  });
  child.stdout.resume();
  if (options.includes("redis")) await ready(port); // Redis linked and joined, not only listening
  const daemon = {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    async stop(signal = "SIGTERM") {
      running.delete(daemon);
      child.kill(signal);
      await exited;
    },
  };
  running.add(daemon);
  return daemon;
}

/** A redis-server on a free port (or `port`), no persistence; `stop()` ends it. */
export async function startRedis(port) {
  port = port || await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1",
    "--save", "", "--appendonly", "no", "--dir", mkdtempSync(path.join(tmpdir(), "redis-"))],
  { stdio: "ignore" });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const redis = {
    port,
    /** SIGSTOP: the server hangs, connections open, nothing answered. */
    pause() {
      child.kill("SIGSTOP");
    },
    /** SIGCONT: what waited runs. */
    unpause() {
      child.kill("SIGCONT");
    },
    async stop() {
      child.kill("SIGCONT");
      running.delete(redis);
      child.kill("SIGTERM");
      await exited;
    },
  };
  running.add(redis);
  const end = Date.now() + 10000;
  while (!await accepts(port)) {
    if (Date.now() > end) throw new Error("redis-server did not start");
    await sleep(20);
  }
  return redis;
}

/**
 * A TCP proxy on a free port to `port`, for failure injection: `hold()`
 * stops passing on what the server sends (the client waits for answers
 * that never come), `cut()` resets every connection through it,
 * `refuse()` resets each new one at once (the server never sees it), and
 * `release()` passes things again for the connections after.
 */
export async function startProxy(port) {
  const sockets = new Set();
  let held = false;
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => held || client.write(chunk));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxy = {
    url: `ws://127.0.0.1:${server.address().port}/ws`,
    hold() {
      held = true;
    },
    cut() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    refuse() {
      refusing = true;
    },
    release() {
      held = false;
      refusing = false;
    },
    async stop() {
      running.delete(proxy);
      proxy.cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  running.add(proxy);
  return proxy;
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = createConnection(port, "127.0.0.1");
    socket.on("connect", () => { socket.end(); resolve(true); });
    socket.on("error", () => resolve(false));
  });
}

after(async () => {
  await Promise.all([...running].map((process) => process.stop()));
});

/**
 * Clients made by `open()`, closed after each test: a new Client with
 * short backoffs (tests take seconds, not minutes).
 */
export function clientMaker() {
  const clients = [];
  const make = (url, options = {}) => {
    const client = new Client(url, { reconnect: { initial: 50, max: 200 }, openTimeout: 2000,
      connectTimeout: 5000, ...options });
    clients.push(client);
    return client;
  };
  make.open = async (url, options) => {
    const client = make(url, options);
    await within(client.connect(), 6000, "connect()");
    return client;
  };
  make.closeAll = () => {
    for (const client of clients.splice(0)) client.close();
  };
  return make;
}
