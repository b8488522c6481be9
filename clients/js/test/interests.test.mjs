// Interests (issue #24): a Caller with `interests` prefers a partner who
// shares one, and for the first `fallbackAfter` seconds of a search takes
// only such a one -- against a real daemon.
import { test, before } from "node:test";
import assert from "node:assert/strict";

import { Caller } from "../aleatoria.js";
import { RUNTIMES, clientMaker, next, sleep, startDaemon } from "./daemons.mjs";

let url;
const client = clientMaker();

before(async () => {
  ({ url } = await startDaemon(["--allow-no-origin"]));
});

test.afterEach(() => client.closeAll());

/** An RTCPeerConnection that does nothing: these tests are about who is paired. */
class Idle {
  addTransceiver() {}
  addTrack() {}
  close() {}
}

for (const [runtime, WebSocket] of RUNTIMES) {
  const connect = (userId) => client.open(url, { userId: `${runtime}-int-${userId}`, WebSocket });
  const caller = async (userId, options = {}) =>
    new Caller(await connect(userId), { RTCPeerConnection: Idle, ...options });

  test(`only a partner who shares an interest, until fallbackAfter [${runtime}]`, async () => {
    const golfer = await caller("golfer", { interests: ["golf"] });
    golfer.available();
    await golfer.client.getRooms(); // in the pool once this is answered
    const me = await caller("me", { interests: ["Chess", "jazz"], fallbackAfter: 0.5 });
    assert.equal(await me.next(), false);
    const fan = await caller("fan", { interests: ["jazz"] });
    fan.available();
    await fan.client.getRooms();
    const call = next(me, "call");
    assert.equal(await me.next(), true);
    assert.equal((await call).peerId, `${runtime}-int-fan`);
    me.hangup();

    const late = await caller("late", { interests: ["chess"], fallbackAfter: 0.2 });
    const found = next(late, "call");
    assert.equal(await late.next(), false);
    // nobody shared one within fallbackAfter: it asked again by itself, for anyone
    assert.equal((await found).peerId, `${runtime}-int-golfer`);
  });

  test(`stop() ends a search that would have asked again [${runtime}]`, async () => {
    const other = await caller("other", { interests: ["golf"] });
    other.available();
    await other.client.getRooms();
    const quitter = await caller("quitter", { interests: ["opera"], fallbackAfter: 0.2 });
    assert.equal(await quitter.next(), false);
    quitter.stop();
    await sleep(400);
    assert.equal(quitter.peerId, null);
    assert.equal(other.peerId, null);
  });

  test(`requestPeer says the interests the two share [${runtime}]`, async () => {
    const bob = await connect("bob");
    bob.available(["Tennis", "golf"]);
    await bob.getRooms();
    const alice = await connect("alice");
    const match = await alice.requestPeer(undefined, { interests: ["tennis"], interestsOnly: true });
    assert.deepEqual([match.peerId, match.commonInterests], [`${runtime}-int-bob`, ["tennis"]]);
  });
}
