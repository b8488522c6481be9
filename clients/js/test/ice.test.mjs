// ICE servers from the server (issue #25): the client keeps the latest
// (`iceServers`, the `iceservers` event), asks for fresh ones
// (`getIceServers()`), and a Caller gives each call's RTCPeerConnection
// the ones its assign_role brought -- against a real daemon with TURN set.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";

import { Caller } from "../aleatoria.js";
import { RUNTIMES, clientMaker, next, randomSecret, startDaemon, until } from "./daemons.mjs";

const secret = randomSecret();
const TURN = "turn:127.0.0.1:3478?transport=udp";
const STUN = "stun:127.0.0.1:3478";
let url;
const client = clientMaker();

before(async () => {
  ({ url } = await startDaemon(["--allow-no-origin", "--turn-url", TURN, "--stun-url", STUN,
    "--turn-ttl", "600"], { env: { ALEATORIA_TURN_SECRET: secret } }));
});

test.afterEach(() => client.closeAll());

/** The TURN entry, checked as coturn would: base64(HMAC-SHA1(secret, username)), not expired. */
function turnOf(iceServers) {
  assert.deepEqual(iceServers[0], { urls: [STUN] });
  const turn = iceServers[1];
  assert.deepEqual(turn.urls, [TURN]);
  assert.equal(turn.credential, createHmac("sha1", secret).update(turn.username).digest("base64"));
  const expiry = Number(turn.username.split(":")[0]);
  assert.ok(expiry > Date.now() / 1000 + 590 && expiry <= Date.now() / 1000 + 601);
  return turn.username;
}

/** An RTCPeerConnection that only records the configuration it was made with. */
function recordingPeerConnection() {
  return class Recording {
    static made = [];

    constructor(config) {
      Recording.made.push(config);
    }

    addTransceiver() {}

    addTrack() {}

    close() {}
  };
}

for (const [runtime, WebSocket] of RUNTIMES) {
  const connect = (userId, options = {}) =>
    client.open(url, { userId: `${runtime}-ice-${userId}`, WebSocket, ...options });

  test(`the client keeps the ICE servers it was given and asks for fresh ones [${runtime}]`,
    async () => {
      const alice = await connect("alice");
      await until(() => alice.iceServers.length === 2, 5000, "ice_servers");
      const first = turnOf(alice.iceServers);
      const told = next(alice, "iceservers");
      const fresh = await alice.getIceServers();
      assert.equal(fresh.ttl, 600);
      assert.equal(Date.parse(fresh.expiresAt) / 1000,
        Number(fresh.iceServers[1].username.split(":")[0]));
      assert.notEqual(turnOf(fresh.iceServers), first);
      assert.deepEqual(await told, fresh.iceServers);
      assert.deepEqual(alice.iceServers, fresh.iceServers);
    });

  test(`each call's RTCPeerConnection gets the ICE servers of its assign_role [${runtime}]`,
    async () => {
      const RTCPeerConnection = recordingPeerConnection();
      const alice = await connect("alice2");
      const bob = await connect("bob2");
      const caller = new Caller(alice, { RTCPeerConnection });
      const callee = new Caller(bob, { RTCPeerConnection });
      const assigned = next(bob, "assign_role");
      callee.available();
      await bob.getRooms(); // bob is in the pool once this is answered
      assert.equal(await caller.next(), true);
      const theirs = (await assigned).payload.iceServers;
      await until(() => RTCPeerConnection.made.length === 2, 5000, "both connections");
      const names = RTCPeerConnection.made.map((config) => turnOf(config.iceServers));
      assert.equal(new Set(names).size, 2);
      assert.ok(names.includes(turnOf(theirs)));
      caller.hangup();

      const own = new Caller(await connect("carol2"),
        { RTCPeerConnection, rtcConfig: { iceServers: [{ urls: ["stun:own.example"] }] } });
      const dave = await connect("dave2");
      new Caller(dave, { RTCPeerConnection }).available();
      await dave.getRooms();
      assert.equal(await own.next(), true);
      await until(() => RTCPeerConnection.made.length === 4, 5000, "the app's connection");
      assert.ok(RTCPeerConnection.made.slice(2).some(
        (config) => config.iceServers[0].urls[0] === "stun:own.example"));
    });
}
