// The demo app: random video chat, rooms and direct messages, on the
// Aleatoria client (aleatoria.js, served beside this file).
import { Caller, Client } from "./aleatoria.js";

const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
let client = null;
let caller = null;
let room = "Lobby";
let dmUser = "";

// For the browser tests and the console: the live client and caller.
window.demo = {
  get client() { return client; },
  get caller() { return caller; },
  trace: [],
};

$("name").value = localStorage.getItem("aleatoria-name") ||
  `guest-${Math.random().toString(36).slice(2, 7)}`;

$("connect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  localStorage.setItem("aleatoria-name", name);
  if (client) client.close();
  client = new Client(wsUrl, { userId: name, room: "Lobby" });
  client.addEventListener("state", (e) => { $("connection").value = e.detail; });
  client.addEventListener("close", (e) => {
    if (e.detail.code === 4001) $("connection").value = "replaced by another tab";
  });
  wire(client);
  try {
    await client.connect();
  } catch (error) {
    $("connection").value = `not connected: ${error.message}`;
    return;
  }
  $("app").hidden = false;
  $("connect").textContent = "Reconnect";
  renderRooms();
  await showRoom("Lobby");
  await refreshConversations();
});

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
      if (caller && other === caller.peerId) appendLine($("call-log"), m, c.userId);
      if (other === dmUser) appendLine($("dm-log"), m, c.userId);
      refreshConversations();
    }
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

// Random video chat

$("start").addEventListener("click", async () => {
  if (!caller) {
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: true });
      } catch (error) {
        callStatus("no-camera", `No camera: ${error.message}. Calls will receive only.`);
      }
    }
    if (stream) $("local-video").srcObject = stream;
    caller = new Caller(client, { stream });
    wireCaller(caller);
  }
  $("start").disabled = true;
  $("next").disabled = false;
  await findPartner();
});

$("next").addEventListener("click", findPartner);

$("hangup").addEventListener("click", () => {
  caller.hangup();
  client.unavailable();
  $("start").disabled = false;
  $("next").disabled = true;
});

async function findPartner() {
  callStatus("searching", "Looking for someone…");
  try {
    if (!(await caller.next())) callStatus("waiting", "Waiting for someone to join…");
  } catch (error) {
    callStatus("error", `Could not look for a partner: ${error.message}`);
  }
}

function wireCaller(c) {
  c.addEventListener("error", (e) => console.warn("call:", e.detail && e.detail.message));
  c.addEventListener("call", (e) => {
    $("partner").textContent = e.detail.peerId;
    $("call-log").replaceChildren();
    $("hangup").disabled = false;
    $("call-input").disabled = $("call-send").disabled = false;
    callStatus("connecting", `Connecting to ${e.detail.peerId}…`);
  });
  c.addEventListener("track", (e) => {
    const video = $("remote-video");
    video.srcObject = e.detail.streams[0] || new MediaStream([e.detail.track]);
  });
  c.addEventListener("connection", (e) => {
    if (e.detail === "connected") callStatus("connected", `In a call with ${c.peerId}`);
    if (e.detail === "failed") callStatus("failed", "The call could not connect.");
  });
  c.addEventListener("ended", (e) => {
    $("remote-video").srcObject = null;
    $("partner").textContent = "No partner yet";
    $("hangup").disabled = true;
    $("call-input").disabled = $("call-send").disabled = true;
    const why = e.detail.local ? "You left the call." : `${e.detail.peerId} left (${e.detail.reason}).`;
    callStatus("ended", `Call ended. ${why}`);
  });
}

function callStatus(state, text) {
  $("call-status").dataset.state = state;
  $("call-status").textContent = text;
}

$("call-chat").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("call-input").value.trim();
  if (!text || !caller || !caller.peerId) return;
  client.write(caller.peerId, text).catch((error) => systemLine($("call-log"), error.message));
  $("call-input").value = "";
});

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
