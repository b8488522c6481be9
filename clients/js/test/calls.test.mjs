// Next puts both users back in the queue (issue #25): the skipping side
// asks again, and the skipped side's Caller says available again -- by
// default; with `requeue: false` it stays out of the pool.
import { test, before } from "node:test";
import assert from "node:assert/strict";

import { Caller } from "../aleatoria.js";
import { RUNTIMES, clientMaker, next, startDaemon } from "./daemons.mjs";

let url;
const client = clientMaker();

before(async () => {
  ({ url } = await startDaemon(["--allow-no-origin"]));
});

test.afterEach(() => client.closeAll());

/** An RTCPeerConnection that does nothing: the calls here are only signaling. */
class Silent {
  addTransceiver() {}

  addTrack() {}

  close() {}
}

for (const [runtime, WebSocket] of RUNTIMES) {
  const connect = (userId) => client.open(url, { userId: `${runtime}-q-${userId}`, WebSocket });

  /** Two users in a call, `skipper`'s Caller then skips `skipped`'s. */
  async function skip(options = {}) {
    const skipper = new Caller(await connect(`a${options.requeue}`),
      { RTCPeerConnection: Silent });
    const skipped = new Caller(await connect(`b${options.requeue}`),
      { RTCPeerConnection: Silent, ...options });
    skipped.available();
    await skipped.client.getRooms(); // in the pool once this is answered
    assert.equal(await skipper.next(), true);
    assert.equal(skipper.peerId, skipped.client.userId);
    const ended = next(skipped, "ended");
    assert.equal(await skipper.next(), false); // nobody else: the skipper waits in the pool
    assert.equal((await ended).reason, "skipped");
    await skipped.client.getRooms(); // its available (if any) has been handled
    return [skipper, skipped];
  }

  test(`a skipped user is back in the pool, as its skipper is [${runtime}]`, async () => {
    const [skipper, skipped] = await skip();
    const found = [];
    for (const name of ["c", "d"]) {
      found.push((await (await connect(name)).requestPeer()).peerId);
    }
    assert.deepEqual(found.sort(), [skipper.client.userId, skipped.client.userId].sort());
  });

  test(`with requeue false, a skipped user stays out of the pool [${runtime}]`, async () => {
    const [skipper] = await skip({ requeue: false });
    assert.equal((await (await connect("e")).requestPeer()).peerId, skipper.client.userId);
    assert.equal(await (await connect("f")).requestPeer(), null);
  });
}
