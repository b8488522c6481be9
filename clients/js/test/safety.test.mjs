// Blocking and reporting strangers (docs/safety.rst) through the client:
// block(), unblock(), getBlocked(), report(), and the Caller's block() and
// report() of its partner, against a real daemon.
import { test, before } from "node:test";
import assert from "node:assert/strict";

import { AleatoriaError, Caller, REPORT_REASONS } from "../aleatoria.js";
import {
  RUNTIMES, clientMaker, collect, freePort, next, randomSecret, sleep, startDaemon, until,
} from "./daemons.mjs";

let url, api;
const token = randomSecret();
const client = clientMaker();

before(async () => {
  const apiPort = await freePort();
  // --rematch-after 0: two users who met may be paired again at once, but for a block
  ({ url } = await startDaemon(["--allow-no-origin", "--rematch-after", "0",
    "--max-blocks", "2", "--reports-per-hour", "2",
    "--api-port", `tcp:${apiPort}:interface=127.0.0.1`],
  { env: { ALEATORIA_API_TOKEN: token } }));
  api = `http://127.0.0.1:${apiPort}/api/v1`;
});

test.afterEach(() => client.closeAll());

/** A report as the operator reads it (GET /api/v1/reports/{id}). */
async function filed(reportId) {
  const response = await fetch(`${api}/reports/${reportId}`,
    { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

/** An RTCPeerConnection that does nothing: the calls here are only signaling. */
class Silent {
  addTransceiver() {}

  addTrack() {}

  close() {}
}

const refusedWith = (code) => (error) =>
  error instanceof AleatoriaError && error.code === code;

for (const [runtime, WebSocket] of RUNTIMES) {
  const name = (user) => `${runtime}-s-${user}`;
  const connect = (user) => client.open(url, { userId: name(user), WebSocket });

  test(`block refuses direct messages both ways, getBlocked lists, unblock lets them through [${runtime}]`, async () => {
    const alice = await connect("alice");
    const bob = await connect("bob");
    await bob.write(name("alice"), "before");
    assert.deepEqual(await alice.block(name("bob")), { userId: name("bob") });
    assert.deepEqual(await alice.block(name("bob")), { userId: name("bob") }, "again: the same");
    await assert.rejects(bob.write(name("alice"), "blocked"), refusedWith("forbidden"));
    await assert.rejects(alice.write(name("bob"), "blocker"), refusedWith("forbidden"));
    assert.deepEqual(await alice.getBlocked(), [name("bob")]);
    assert.deepEqual(await bob.getBlocked(), [], "the blocked user blocks nobody");
    assert.deepEqual(await alice.unblock(name("bob")), { userId: name("bob") });
    assert.deepEqual(await alice.getBlocked(), []);
    assert.deepEqual(await alice.unblock(name("bob")), { userId: name("bob") },
      "not blocked: the same");
    const heard = next(alice, "chat_message");
    assert.equal((await bob.write(name("alice"), "after")).payload.content, "after");
    assert.equal((await heard).payload.content, "after");
    const kept = await alice.getDirectMessages(name("bob"));
    assert.deepEqual(kept.map((m) => m.payload.content), ["before", "after"],
      "the refused messages were kept nowhere");
  });

  test(`blocking oneself, nobody, or past --max-blocks rejects with the server's code [${runtime}]`, async () => {
    const carl = await connect("carl");
    await assert.rejects(carl.block(name("carl")), refusedWith("invalid_message"));
    await assert.rejects(carl.block(""), refusedWith("invalid_message"));
    await assert.rejects(carl.unblock(undefined), refusedWith("invalid_message"));
    await carl.block(name("x1"));
    await carl.block(name("x2"));
    const error = await carl.block(name("x3")).then(() => null, (e) => e);
    assert.ok(refusedWith("quota_exceeded")(error), `${error}`);
    assert.equal(error.sent, true);
    assert.deepEqual(await carl.getBlocked(), [name("x1"), name("x2")]);
  });

  test(`report resolves with a reportId, blocks, and the operator reads it [${runtime}]`, async () => {
    const dana = await connect("dana");
    const eric = await connect("eric");
    await eric.write(name("dana"), "buy my stuff");
    const answer = await dana.report(name("eric"), "spam", "sells things");
    assert.equal(answer.userId, name("eric"));
    assert.match(answer.reportId, /^[0-9a-f]{32}$/);
    assert.deepEqual(await dana.getBlocked(), [name("eric")]);
    await assert.rejects(eric.write(name("dana"), "again"), refusedWith("forbidden"));
    const report = await filed(answer.reportId);
    assert.deepEqual([report.reason, report.details, report.reporter.userId,
      report.reported.userId], ["spam", "sells things", name("dana"), name("eric")]);
    assert.deepEqual(report.messages.map((m) => m.content), ["buy my stuff"]);
    // details are optional
    assert.match((await dana.report(name("fay"), "other")).reportId, /^[0-9a-f]{32}$/);
    assert.deepEqual(await dana.getBlocked(), [name("eric"), name("fay")]);
  });

  test(`a bad report rejects with the server's code, and nothing is blocked [${runtime}]`, async () => {
    const gail = await connect("gail");
    await assert.rejects(gail.report(name("hank"), "rude"), refusedWith("invalid_message"));
    await assert.rejects(gail.report(name("hank")), refusedWith("invalid_message"));
    await assert.rejects(gail.report(name("hank"), "spam", "x".repeat(501)),
      refusedWith("invalid_message"));
    await assert.rejects(gail.report(name("gail"), "spam"), refusedWith("invalid_message"));
    assert.deepEqual(await gail.getBlocked(), []);
    // --reports-per-hour 2: the third is refused, with when to try again
    await gail.report(name("r1"), "spam");
    await gail.report(name("r2"), "nudity");
    const error = await gail.report(name("r3"), "minor").then(() => null, (e) => e);
    assert.ok(refusedWith("rate_limited")(error), `${error}`);
    assert.ok(error.payload.retryAfter > 0);
    assert.deepEqual(await gail.getBlocked(), [name("r1"), name("r2")], "r3 not blocked");
  });

  test(`the Caller reports its partner: the call ends on both sides, and they never meet again [${runtime}]`, async () => {
    const ivy = new Caller(await connect("ivy"), { RTCPeerConnection: Silent });
    const joe = new Caller(await connect("joe"), { RTCPeerConnection: Silent });
    joe.available();
    await joe.client.getRooms(); // in the pool once this is answered
    assert.equal(await ivy.next(), true);
    assert.equal(ivy.peerId, name("joe"));
    await until(() => joe.peerId === name("ivy"), 3000, "joe in the call");
    const ivyEnded = collect(ivy, "ended");
    const joeEnded = next(joe, "ended");
    const answer = await ivy.report("harassment", "rude");
    assert.equal(answer.userId, name("joe"));
    assert.deepEqual(ivyEnded, [{ peerId: name("joe"), reason: "reported", local: true }]);
    // the reported side hears only that the call ended
    assert.deepEqual(await joeEnded, { peerId: name("ivy"), reason: "ended", local: false });
    assert.equal(ivy.peerId, null);
    assert.equal(ivy.pc, null);
    assert.equal((await filed(answer.reportId)).reason, "harassment");
    // both in the pool, nobody else there: still never paired
    assert.equal(await ivy.next(), false);
    assert.equal(await joe.next(), false);
    assert.equal(joe.peerId, null);
    await assert.rejects(ivy.report("spam"), (error) =>
      refusedWith("invalid_message")(error) && error.sent === false);
  });

  test(`the Caller blocks its partner and moves on to the next [${runtime}]`, async () => {
    const kim = new Caller(await connect("kim"), { RTCPeerConnection: Silent });
    const lee = new Caller(await connect("lee"), { RTCPeerConnection: Silent });
    const max = new Caller(await connect("max"), { RTCPeerConnection: Silent });
    lee.available();
    await lee.client.getRooms();
    assert.equal(await kim.next(), true);
    const first = kim.peerId;
    assert.equal(first, name("lee"));
    const leeEnded = next(lee, "ended");
    assert.deepEqual(await kim.block(), { userId: name("lee") });
    assert.equal((await leeEnded).reason, "ended");
    assert.equal(kim.peerId, null);
    max.available();
    lee.available(); // back in the pool too: kim must not get it
    await max.client.getRooms();
    await lee.client.getRooms();
    assert.equal(await kim.next(), true);
    assert.equal(kim.peerId, name("max"));
    await sleep(100);
    assert.equal(lee.peerId, null);
    assert.deepEqual(await kim.client.getBlocked(), [name("lee")]);
  });
}

test("REPORT_REASONS are the reasons the server takes", () => {
  assert.deepEqual([...REPORT_REASONS], ["spam", "nudity", "minor", "harassment", "other"]);
  assert.throws(() => { REPORT_REASONS.push("rude"); });
});
