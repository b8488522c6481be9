// A call survives a blip (issue #25): a user's TCP connection is cut (no
// close frame) and it reconnects within the call's grace; both Callers
// keep the call and its RTCPeerConnection, say `reconnecting` and
// `reconnected`, and the impolite side restarts ICE -- whichever side
// blipped. Each user goes through a TCP proxy of its own, cut in turn.
import { test, before } from "node:test";
import assert from "node:assert/strict";

import { Caller } from "../aleatoria.js";
import { RUNTIMES, clientMaker, collect, sleep, startDaemon, startProxy, until }
  from "./daemons.mjs";

let port;
let brief; // a daemon whose calls are held 1 s
const client = clientMaker();
const resumeWait = 300;

before(async () => {
  ({ port } = await startDaemon(["--allow-no-origin", "--call-grace", "30"]));
  brief = (await startDaemon(["--allow-no-origin", "--call-grace", "1"])).port;
});

test.afterEach(() => client.closeAll());

/** An RTCPeerConnection that records what the Caller does to it. */
function recordingPeerConnection() {
  return class Recording {
    static made = [];

    constructor() {
      this.calls = [];
      this.closed = false;
      Recording.made.push(this);
    }

    addTransceiver() {}

    addTrack() {}

    restartIce() {
      this.calls.push("restartIce");
    }

    close() {
      this.closed = true;
    }
  };
}

for (const [runtime, WebSocket] of RUNTIMES) {
  test(`a call is kept across a cut connection and the impolite side restarts ICE [${runtime}]`,
    async () => {
      const RTCPeerConnection = recordingPeerConnection();
      const proxies = { ann: await startProxy(port), bea: await startProxy(port) };
      const users = {};
      for (const name of ["ann", "bea"]) {
        const user = await client.open(proxies[name].url, { userId: `${runtime}-blip-${name}`,
          WebSocket });
        const caller = new Caller(user, { RTCPeerConnection, resumeWait });
        users[name] = { caller, ended: collect(caller, "ended"),
          reconnecting: collect(caller, "reconnecting"),
          reconnected: collect(caller, "reconnected") };
      }
      const { ann, bea } = users;
      bea.caller.available();
      await bea.caller.client.getRooms(); // bea is in the pool once this is answered
      assert.equal(await ann.caller.next(), true);
      await until(() => bea.caller.peerId === ann.caller.client.userId, 5000, "bea's call");
      assert.equal(RTCPeerConnection.made.length, 2);
      const pcs = { ann: ann.caller.pc, bea: bea.caller.pc };
      assert.notEqual(ann.caller.polite, bea.caller.polite);

      let blips = 0;
      for (const [name, other] of [["ann", "bea"], ["bea", "ann"]]) {
        const [self, peer] = [users[name], users[other]];
        const states = collect(self.caller.client, "state");
        proxies[name].cut(); // a reset: no close frame, as a dropped network
        await until(() => self.reconnected.length === blips + 1, 10000, `${name} resumed`);
        await until(() => peer.reconnected.length === blips + 1, 10000, `${other} told`);
        blips += 1;
        assert.deepEqual(states.slice(0, 2), ["reconnecting", "open"]);
        assert.deepEqual(self.reconnecting.at(-1), { peerId: peer.caller.client.userId,
          side: "self" });
        assert.deepEqual(self.reconnected.at(-1), { peerId: peer.caller.client.userId,
          side: "self" });
        assert.deepEqual(peer.reconnected.at(-1), { peerId: self.caller.client.userId,
          side: "peer" });
      }

      await sleep(2 * resumeWait); // a resumed call is not ended by the wait for its resume
      // the same call and the same RTCPeerConnections throughout
      assert.equal(RTCPeerConnection.made.length, 2);
      for (const name of ["ann", "bea"]) {
        const { caller, ended } = users[name];
        assert.deepEqual(ended, []);
        assert.equal(caller.pc, pcs[name]);
        assert.equal(caller.pc.closed, false);
        // once per blip on the impolite side, whichever side it was; never on the polite one
        assert.deepEqual(caller.pc.calls, caller.polite ? [] : ["restartIce", "restartIce"]);
      }
      assert.equal(ann.reconnecting.length + bea.reconnecting.length, 2);

      // the call goes on: a hangup still reaches the partner
      ann.caller.hangup();
      await until(() => bea.ended.length === 1, 5000, "bea's hangup");
      assert.equal(bea.ended[0].reason, "hangup");
      await Promise.all(Object.values(proxies).map((proxy) => proxy.stop()));
    });

  test(`back after the grace, the call is over: no resume comes, and it ends [${runtime}]`,
    async () => {
      const RTCPeerConnection = recordingPeerConnection();
      const proxy = await startProxy(brief);
      const ann = new Caller(await client.open(proxy.url,
        { userId: `${runtime}-late-ann`, WebSocket }), { RTCPeerConnection, resumeWait });
      const bea = new Caller(await client.open(`ws://127.0.0.1:${brief}/ws`,
        { userId: `${runtime}-late-bea`, WebSocket }), { RTCPeerConnection, resumeWait });
      const [annEnded, beaEnded] = [collect(ann, "ended"), collect(bea, "ended")];
      const annBack = collect(ann, "reconnected");
      bea.available();
      await bea.client.getRooms();
      assert.equal(await ann.next(), true);
      await until(() => bea.peerId === ann.client.userId, 5000, "bea's call");

      proxy.refuse();
      proxy.cut();
      await until(() => beaEnded.length === 1, 10000, "the grace's end at bea");
      assert.equal(beaEnded[0].reason, "disconnected");
      assert.equal(ann.peerId, bea.client.userId); // ann, away, knows nothing yet
      proxy.release();
      await until(() => annEnded.length === 1, 10000, "the call's end at ann");
      assert.deepEqual(annEnded, [{ peerId: bea.client.userId, reason: "disconnected",
        local: false }]);
      assert.deepEqual(annBack, []);
      assert.equal(ann.client.state, "open");
      assert.equal(ann.pc, null);
      assert.ok(RTCPeerConnection.made.every((pc) => pc.closed));
      await proxy.stop();
    });
}
