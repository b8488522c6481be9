// The demo app: random video chat with strangers, rooms and direct
// messages, on the Aleatoria client (aleatoria.js, served beside this file).
import { Caller, Client } from "./aleatoria.js";

const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
let client = null;
let caller = null;
let stream = null; // the camera and microphone, once allowed
let mode = ""; // "anonymous" (the server names its users: no name to type) or "named"
let stopped = ""; // why the connection ended for good, in words
let room = "Lobby";
let dmUser = "";

// For the browser tests and the console: the live client and caller.
window.demo = {
  get client() { return client; },
  get caller() { return caller; },
  get stream() { return stream; },
  get mode() { return mode; },
  trace: [],
};

/** A refusal or a lost connection, as a person would say it. */
function inWords(error) {
  const reason = error.message ? ` (${error.message})` : "";
  if (error.code === "banned" || error.message === "banned") {
    const seconds = error.payload && error.payload.retryAfter;
    return seconds ? `You are banned from this server for ${Math.ceil(seconds / 60)} more minutes.`
      : "You are banned from this server for now.";
  }
  switch (error.code) {
    case "replaced":
      return "Opened in another tab: this one is closed.";
    case "rate_limited":
      return `Too many connections from your network just now${reason}. Wait a little, then connect again.`;
    case "forbidden":
      return `The server does not let this page in${reason}.`;
    case "unauthorized":
      return `The server did not accept who you are${reason}.`;
    case "invalid_request":
      return `The server refused the connection${reason}.`;
    case "unreachable":
      return "The server cannot be reached. Check your network, then connect again.";
    case "unavailable":
      return "The server is having trouble. Try again in a moment.";
    default:
      return `Not connected${reason}.`;
  }
}

function showConnection(state, text) {
  $("connection").dataset.state = state;
  $("connection").value = text;
}

const STATES = {
  connecting: "connecting…",
  open: "connected",
  reconnecting: "connection lost, reconnecting…",
};

/**
 * How the server names users: a plain GET of /ws answers what an upgrade
 * without a userId would get -- 426 (it would be admitted) when the server
 * names its users, 400 when it wants a userId (docs/protocol.rst, "HTTP").
 */
async function start() {
  let answer;
  try {
    const response = await fetch("/ws");
    answer = { status: response.status, ...(await response.json()) };
  } catch (error) {
    showConnection("closed", inWords({ code: "unreachable", message: error.message }));
    return;
  }
  if (answer.status === 426) {
    mode = "anonymous";
    $("name-field").hidden = true;
    await connect();
  } else if (answer.status === 400) {
    mode = "named";
    $("name").value = localStorage.getItem("aleatoria-name") ||
      `guest-${Math.random().toString(36).slice(2, 7)}`;
    $("name-field").hidden = false;
    $("connect-form").hidden = false;
    showConnection("idle", "not connected");
  } else {
    showConnection("closed", inWords({ code: answer.code, message: answer.error }));
    $("name-field").hidden = true;
    $("connect").textContent = "Try again";
    $("connect-form").hidden = false;
  }
}

$("connect-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (mode) connect();
  else start(); // the server refused even a look: ask it again
});

async function connect() {
  if (client) client.close();
  endCall();
  caller = null;
  stopped = "";
  const options = { room: "Lobby" };
  if (mode === "anonymous") {
    // this tab's identity: a reload keeps it; another tab is another stranger
    options.reconnectToken = sessionStorage.getItem("aleatoria-token") || "";
  } else {
    options.userId = $("name").value.trim();
    localStorage.setItem("aleatoria-name", options.userId);
  }
  const c = client = new Client(wsUrl, options);
  c.addEventListener("state", (e) => {
    if (c !== client) return;
    if (e.detail === "closed") closed();
    else if (e.detail === "open" && mode === "named") showConnection("open", `connected as ${c.userId}`);
    else showConnection(e.detail, STATES[e.detail] || e.detail);
  });
  c.addEventListener("close", (e) => {
    if (e.detail.code === 4001) stopped = inWords({ code: "replaced" });
    if (e.detail.code === 4003) stopped = inWords({ code: "banned" });
  });
  c.addEventListener("refused", (e) => { stopped = inWords(e.detail); });
  c.addEventListener("identity", (e) => {
    sessionStorage.setItem("aleatoria-token", e.detail.reconnectToken);
  });
  wire(c);
  try {
    await c.connect();
  } catch (error) {
    if (c !== client) return;
    if (error.code === "unauthorized" && options.reconnectToken) {
      // a reconnect token past its time: come back as a new stranger
      sessionStorage.removeItem("aleatoria-token");
      await connect();
      return;
    }
    stopped = inWords(error);
    closed();
    return;
  }
  $("connect-form").hidden = mode === "anonymous";
  $("connect").textContent = "Reconnect";
  $("app").hidden = false;
  $("app").inert = false;
  renderRooms();
  await showRoom("Lobby");
  await refreshConversations();
}

/** Closed for good: said in words, nothing left clickable but Connect. */
function closed() {
  showConnection("closed", stopped || "disconnected");
  $("app").inert = true;
  if (caller && caller.pc) caller.pc.close();
  endCall();
  caller = null;
  // a new connection starts with a new Caller: Start again
  $("start").disabled = false;
  $("next").disabled = $("hangup").disabled = true;
  if ($("report-dialog").open) $("report-dialog").close();
  callStatus("idle", "Press Start to meet a stranger.");
  $("connect").textContent = mode === "anonymous" ? "Connect again" : "Connect";
  $("connect-form").hidden = false;
}

function wire(c) {
  for (const type of ["assign_role", "webrtc_offer", "webrtc_answer", "webrtc_candidate",
    "hangup", "error"]) {
    c.addEventListener(type, (e) => window.demo.trace.push(
      `${type} from ${e.detail.fromUser} ${JSON.stringify(e.detail.payload).slice(0, 60)}`));
  }
  c.addEventListener("chat_message", (e) => {
    const m = e.detail;
    if (m.room) {
      if (m.room === room) appendRoom(m);
    } else {
      const other = m.fromUser === c.userId ? m.toUser : m.fromUser;
      if (other === dmUser) appendLine($("dm-log"), m, c.userId);
      refreshConversations();
    }
  });
  c.addEventListener("call_message", (e) => {
    const m = e.detail;
    const mine = m.fromUser === c.userId;
    if (!caller || (mine ? m.toUser : m.fromUser) !== caller.peerId) return;
    callLine(mine ? "You" : "Stranger", m.payload.content, mine ? "me" : "");
  });
  for (const type of ["user_joined", "user_left"]) {
    c.addEventListener(type, (e) => {
      if (e.detail.room !== room) return;
      const verb = type === "user_joined" ? "joined" : "left";
      systemLine($("room-log"), `${e.detail.payload.userId} ${verb}`);
      showMembers(room);
    });
  }
  c.addEventListener("resumed", () => showRoom(room));
}

// Random video chat with strangers

async function camera() {
  try {
    return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    try {
      return await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (error) {
      callStatus("no-camera", `No camera: ${error.message}. Calls will receive only.`);
      return null;
    }
  }
}

$("start").addEventListener("click", async () => {
  $("start").disabled = true;
  if (!stream) {
    stream = await camera();
    if (stream) {
      $("local-video").srcObject = stream;
      $("mute").disabled = stream.getAudioTracks().length === 0;
      $("camera").disabled = stream.getVideoTracks().length === 0;
    }
  }
  if (!caller) {
    caller = new Caller(client, { stream, fallbackAfter: 10 });
    wireCaller(caller);
  }
  $("next").disabled = $("hangup").disabled = false;
  await findPartner();
});

$("next").addEventListener("click", () => findPartner());

$("hangup").addEventListener("click", () => {
  caller.stop();
  $("start").disabled = false;
  $("next").disabled = $("hangup").disabled = true;
  callStatus("idle", "Press Start to meet a stranger.");
});

/** Up to 10 interests, as typed: comma-separated, each 1-32 characters. */
function interests() {
  return $("interests").value.split(",").map((s) => s.trim().slice(0, 32))
    .filter(Boolean).slice(0, 10);
}

/** Next: leave the call, if any, and look for a stranger (`said`: what happened first). */
async function findPartner(said = "") {
  caller.interests = interests();
  callStatus("searching", said + (caller.interests.length
    ? "Looking for a stranger who shares an interest…" : "Looking for a stranger…"));
  try {
    if (!(await caller.next())) callStatus("waiting", `${said}Waiting for a stranger to join…`);
  } catch (error) {
    if (error.code === "rate_limited") {  // --skips-per-minute: a request's, not a connection's
      const wait = Math.ceil(((error.payload && error.payload.retryAfter) || 1000) / 1000);
      callStatus("error", `You are skipping too fast: wait ${wait} s, then press Next.`);
    } else {
      callStatus("error", `Could not look for a stranger: ${inWords(error)}`);
    }
  }
}

/** Mute and camera off: the tracks stay in the call, sending silence or black. */
function toggle(button, tracks, on, off) {
  const pressed = button.getAttribute("aria-pressed") !== "true";
  for (const track of tracks) track.enabled = !pressed;
  button.setAttribute("aria-pressed", String(pressed));
  button.textContent = pressed ? off : on;
}

$("mute").addEventListener("click", () =>
  toggle($("mute"), stream.getAudioTracks(), "Mute", "Unmute"));
$("camera").addEventListener("click", () => {
  toggle($("camera"), stream.getVideoTracks(), "Camera off", "Camera on");
  $("local-video").classList.toggle("off", $("camera").getAttribute("aria-pressed") === "true");
});

function wireCaller(c) {
  c.addEventListener("error", (e) => console.warn("call:", e.detail && e.detail.message));
  c.addEventListener("call", (e) => {
    const common = e.detail.commonInterests;
    $("partner").textContent = common.length ? `Stranger (you both like ${common.join(", ")})`
      : "Stranger";
    $("call-log").replaceChildren();
    $("call-input").disabled = $("call-send").disabled = false;
    $("block").disabled = $("report").disabled = false;
    callStatus("connecting", "Connecting to a stranger…");
  });
  c.addEventListener("track", (e) => {
    const video = $("remote-video");
    video.srcObject = e.detail.streams[0] || new MediaStream([e.detail.track]);
  });
  c.addEventListener("connection", (e) => {
    if (e.detail === "connected") callStatus("connected", "You are talking to a stranger.");
    if (e.detail === "failed") callStatus("failed", "The call could not connect. Press Next.");
  });
  // a blip of this tab's socket: the Caller keeps the call, and so does the view
  c.addEventListener("reconnecting", () => callStatus("reconnecting", "Reconnecting…"));
  c.addEventListener("reconnected", (e) => {
    if (e.detail.side !== "self") return;
    if (c.pc && c.pc.connectionState === "connected") {
      callStatus("connected", "You are talking to a stranger.");
    } else {
      callStatus("connecting", "Connecting to a stranger…");
    }
  });
  c.addEventListener("ended", (e) => {
    endCall();
    if (e.detail.local) return; // Next or Stop say what comes next
    if (e.detail.reason === "skipped") {
      // the Caller has put this user back in the queue, as the stranger is
      callStatus("waiting", "The stranger moved on. Waiting for someone new…");
    } else {
      callStatus("ended", "The stranger left. Press Next to meet someone new.");
    }
  });
}

/** The call's view emptied: no partner, no chat. */
function endCall() {
  $("remote-video").srcObject = null;
  $("partner").textContent = "No partner yet";
  $("call-input").disabled = $("call-send").disabled = true;
  $("block").disabled = $("report").disabled = true;
}

function callStatus(state, text) {
  $("call-status").dataset.state = state;
  $("call-status").textContent = text;
}

// Block and Report: the stranger is never met again (a report tells the
// operator why, and blocks too); the call ends -- the stranger hears only
// that it ended -- and this side moves on, as Next does.

$("block").addEventListener("click", async () => {
  if (!caller || !caller.peerId) return;
  $("block").disabled = $("report").disabled = true;
  try {
    await caller.block();
  } catch (error) {
    refusedSafety("block", error);
    return;
  }
  await moveOn("Stranger blocked. ");
});

let reporting = ""; // the stranger the report dialog is about

$("report").addEventListener("click", () => {
  if (!caller || !caller.peerId) return;
  reporting = caller.peerId;
  $("report-form").reset();
  $("report-dialog").showModal();
});

$("report-cancel").addEventListener("click", () => $("report-dialog").close());

$("report-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData($("report-form"));
  const reason = form.get("reason");
  const details = form.get("details").trim();
  $("report-dialog").close();
  const stranger = reporting;
  reporting = "";
  if (!caller || !stranger || !reason) return;
  $("block").disabled = $("report").disabled = true;
  try {
    // the stranger may have left while the dialog was open: reported all the same
    if (caller.peerId === stranger) await caller.report(reason, details);
    else await client.report(stranger, reason, details);
  } catch (error) {
    refusedSafety("report", error);
    return;
  }
  await moveOn("Stranger reported and blocked. ");
});

/** After a block or report: on to the next stranger, unless Stop came meanwhile. */
async function moveOn(said) {
  if (!caller || $("next").disabled) return;
  $("next").focus(); // Block and Report are disabled now: the keyboard goes on from Next
  await findPartner(said);
}

/** A block or report refused: said in words; the call, if any, goes on. */
function refusedSafety(what, error) {
  if (caller && caller.peerId) $("block").disabled = $("report").disabled = false;
  const wait = (error.payload && error.payload.retryAfter) || 1000;
  if (error.code === "rate_limited" && what === "report" && wait > 60000) {
    // --reports-per-hour: nothing was filed, nobody blocked
    callStatus("error", `You have reported many strangers this hour: try again in ${
      Math.ceil(wait / 60000)} min. Press Next to move on.`);
  } else if (error.code === "rate_limited") {
    callStatus("error", `Too fast: wait ${Math.ceil(wait / 1000)} s, then ${what} again.`);
  } else if (error.code === "quota_exceeded") {
    callStatus("error", "You block as many strangers as you may. Press Next to move on.");
  } else {
    callStatus("error", `Could not ${what} the stranger: ${inWords(error)}`);
  }
}

// The call's chat: call_message, relayed to the partner only and never kept
$("call-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("call-input").value.trim();
  if (!content || !caller || !caller.peerId) return;
  client.request({ type: "call_message", toUser: caller.peerId, payload: { content } },
    "call_message").catch((error) => systemLine($("call-log"), inWords(error)));
  $("call-input").value = "";
});

function callLine(who, text, className) {
  const li = document.createElement("li");
  li.className = className;
  li.textContent = `${who}: ${text}`;
  $("call-log").append(li);
  $("call-log").scrollTop = $("call-log").scrollHeight;
}

// Rooms

$("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("room-name").value.trim();
  try {
    await client.joinRoom(name);
    $("room-name").value = "";
    renderRooms();
    await showRoom(name);
  } catch (error) {
    systemLine($("room-log"), error.message);
  }
});

$("leave").addEventListener("click", async () => {
  await client.leaveRoom(room);
  renderRooms();
  const [first] = client.rooms;
  if (first) await showRoom(first);
});

$("room-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("room-input").value.trim();
  if (!text) return;
  client.say(room, text).catch((error) => systemLine($("room-log"), error.message));
  $("room-input").value = "";
});

function renderRooms() {
  $("room-list").replaceChildren(...[...client.rooms].sort().map((name) =>
    chip(name, name === room, () => showRoom(name))));
}

async function showRoom(name) {
  room = name;
  $("room-title").textContent = name;
  renderRooms();
  $("room-log").replaceChildren();
  try {
    const messages = await client.getRecentMessages(name, { limit: 50 });
    for (const m of messages.reverse()) appendRoom(m);
  } catch (error) {
    systemLine($("room-log"), error.message);
  }
  await showMembers(name);
}

async function showMembers(name) {
  try {
    const page = await client.getRoomMembers(name);
    $("members").replaceChildren(...page.members.map((member) => {
      const li = document.createElement("li");
      li.textContent = member === client.userId ? `${member} (you)` : member;
      return li;
    }));
  } catch {
    $("members").replaceChildren();
  }
}

function appendRoom(m) {
  appendLine($("room-log"), m, client.userId);
}

// Direct messages

$("dm-open").addEventListener("submit", (event) => {
  event.preventDefault();
  openConversation($("dm-user").value.trim());
});

$("dm-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("dm-input").value.trim();
  if (!text || !dmUser) return;
  client.write(dmUser, text).catch((error) => systemLine($("dm-log"), error.message));
  $("dm-input").value = "";
});

async function openConversation(user) {
  dmUser = user;
  $("dm-title").textContent = `With ${user}`;
  $("dm-input").disabled = $("dm-send").disabled = false;
  $("dm-log").replaceChildren();
  try {
    const messages = await client.getDirectMessages(user, { limit: 50 });
    for (const m of messages) appendLine($("dm-log"), m, client.userId);
    const last = messages[messages.length - 1];
    if (last && last.offset) await client.markRead(user, last.offset);
  } catch (error) {
    systemLine($("dm-log"), error.message);
  }
  await refreshConversations();
}

async function refreshConversations() {
  try {
    const { conversations } = await client.getConversations({ limit: 20 });
    $("conversations").replaceChildren(...conversations.map((c) =>
      chip(c.unread ? `${c.withUser} (${c.unread})` : c.withUser, c.withUser === dmUser,
        () => openConversation(c.withUser))));
  } catch {
    // the list waits for the next message
  }
}

// Rendering

function chip(text, current, open) {
  const li = document.createElement("li");
  li.textContent = text;
  li.tabIndex = 0;
  li.setAttribute("role", "button");
  if (current) li.setAttribute("aria-current", "true");
  li.addEventListener("click", open);
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      open();
    }
  });
  return li;
}

function appendLine(log, m, me) {
  const li = document.createElement("li");
  li.className = m.fromUser === me ? "me" : m.fromUser === "system" ? "system" : "";
  li.textContent = `${m.fromUser}: ${m.payload.content}`;
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

function systemLine(log, text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

start();
