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
    assert.equal(await late.next(), false);
    await sleep(250);
    assert.equal(await late.next(), true);
    assert.equal(late.peerId, `${runtime}-int-golfer`);
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
