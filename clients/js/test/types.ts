// What TypeScript makes of aleatoria.d.ts: each event's detail is typed
// (test/types.test.mjs compiles this with tsc --strict; each line marked
// as an expected error must be one).
import { AleatoriaError, Caller, Client, REPORT_REASONS, type ReportReason } from "../aleatoria.js";

const client = new Client("wss://chat.example.com/ws", {
  reconnectToken: localStorage.getItem("token") ?? undefined,
  getToken: async () => "a.jwt.token",
});
client.addEventListener("identity", (e) => {
  const token: string = e.detail.reconnectToken;
  localStorage.setItem("token", token);
});
client.addEventListener("open", (e) => {
  const again: boolean = e.detail.reconnected;
  // @ts-expect-error: open has no userId
  console.log(again, e.detail.userId);
});
client.addEventListener("refused", (e) => {
  const code: string = e.detail.code;
  console.log(code);
});
client.addEventListener("unrecovered", (e) => {
  const where: string | undefined = e.detail.room;
  const offset: number = e.detail.offset;
  console.log(where, offset);
});
client.addEventListener("chat_message", (e) => {
  const offset: number | undefined = e.detail.offset;
  console.log(offset, e.detail.payload.content);
});
client.addEventListener("state", (e) => {
  // @ts-expect-error: not a state
  const state: "gone" = e.detail;
  console.log(state);
});

async function main() {
  await client.connect();
  try {
    const echo = await client.say("Lobby", "hi");
    console.log(echo.offset);
  } catch (error) {
    if (error instanceof AleatoriaError && error.sent === false) await client.say("Lobby", "hi");
    if (error instanceof AleatoriaError) console.log(error.failed?.join(","));
  }
  const saved: string = JSON.stringify(client.getPositions());
  new Client("wss://chat.example.com/ws", { positions: JSON.parse(saved) });
  const caller = new Caller(client, { rtcConfig: { iceServers: [] } });
  caller.addEventListener("ended", (e) => console.log(e.detail.reason, e.detail.local));
  caller.addEventListener("reconnected", (e) => {
    const side: "self" | "peer" = e.detail.side;
    console.log(side, e.detail.peerId);
  });
  // @ts-expect-error: say takes a room and a content
  await client.say("Lobby");

  // blocking and reporting
  const { userId: blockedId }: { userId: string } = await client.block("bob");
  const blocked: string[] = await client.getBlocked();
  await client.unblock(blockedId);
  const reported = await client.report("bob", "harassment", "rude");
  const reportId: string = reported.reportId;
  await client.report("bob", "spam");
  // @ts-expect-error: not a reason the server takes
  await client.report("bob", "rude");
  // @ts-expect-error: report needs a reason
  await client.report("bob");
  const reason: ReportReason = REPORT_REASONS[0];
  // @ts-expect-error: the list is read-only
  REPORT_REASONS.push("other");
  const filed = await caller.report(reason, "details");
  console.log(blocked, reportId, filed.reportId, (await caller.block()).userId);
  // @ts-expect-error: the Caller reports its partner: no userId to give
  await caller.report("bob", "spam");
}
main();
