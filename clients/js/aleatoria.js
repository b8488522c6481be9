// Aleatoria's JavaScript client: one ES module, no dependencies, for
// browsers and Node >= 20 (global WebSocket; on Node 20, run with
// --experimental-websocket or pass `WebSocket`). See README.md beside it.

/** An `error` the server answered a request with; `code` is its code. */
export class AleatoriaError extends Error {
  constructor(code, message, payload = {}) {
    super(message);
    this.name = "AleatoriaError";
    this.code = code;
    this.payload = payload;
  }
}

const DEFAULTS = {
  room: "",
  token: "",
  reconnect: { initial: 500, max: 30000, factor: 2, jitter: 0.5 },
  requestTimeout: 10000,
  resume: true,
};

/** Close codes after which reconnecting would only fight another connection. */
const FINAL = new Set([4001, 4003]);

/**
 * One user's connection to Aleatoria: reconnects by itself, queues what is
 * sent while it is away, matches requests to their answers, and resumes
 * every stream it was reading after a reconnect. Events: `state` (detail:
 * the new state), `open`, `close` (detail: {code, reason}), `message`
 * (every message) and one per message type (`chat_message`,
 * `user_joined`, `assign_role`, ...; detail: the message).
 */
export class Client extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options,
      reconnect: { ...DEFAULTS.reconnect, ...(options.reconnect || {}) } };
    this.WebSocket = this.options.WebSocket || globalThis.WebSocket;
    this.state = "idle";
    this.userId = this.options.userId || "";
    this.rooms = new Set();
    this.positions = new Map(); // "room:<name>" or "inbox" -> {offset, epoch}
    this._queue = [];
    this._pending = new Map();
    this._counter = 0;
    this._attempt = 0;
    this._timer = null;
    this._socket = null;
    this._opened = 0;
  }

  /** Open the connection; resolves once it is open the first time. */
  connect() {
    if (this.state !== "idle" && this.state !== "closed") return this._firstOpen;
    this._firstOpen = new Promise((resolve, reject) => {
      this._resolveOpen = resolve;
      this._rejectOpen = reject;
    });
    this._open();
    return this._firstOpen;
  }

  /** Close for good: no reconnecting; pending requests are rejected. */
  close() {
    clearTimeout(this._timer);
    this._setState("closed");
    if (this._socket) this._socket.close(1000);
    this._failPending(new AleatoriaError("closed", "The client was closed."));
  }

  _open() {
    this._setState(this._opened ? "reconnecting" : "connecting");
    const query = new URLSearchParams();
    if (this.options.userId) query.set("userId", this.options.userId);
    if (this.options.room) query.set("room", this.options.room);
    if (this.options.token) query.set("token", this.options.token);
    const socket = new this.WebSocket(`${this.url}?${query}`);
    this._socket = socket;
    socket.onopen = () => this._onOpen(socket);
    socket.onmessage = (event) => this._onMessage(event.data);
    socket.onclose = (event) => this._onClose(socket, event.code, event.reason);
    socket.onerror = () => {};
  }

  _onOpen(socket) {
    if (socket !== this._socket) return;
    const again = this._opened > 0;
    this._opened += 1;
    this._attempt = 0;
    this.rooms.add(this.options.room || "Lobby");
    this._setState("open");
    if (again) this._resume();
    else if (this.options.resume) this._mark(this.options.room || "Lobby", true);
    const queued = this._queue.splice(0);
    for (const message of queued) this._write(message);
    this.dispatchEvent(new CustomEvent("open", { detail: { reconnected: again } }));
    if (this._resolveOpen) {
      this._resolveOpen(this);
      this._resolveOpen = this._rejectOpen = null;
    }
  }

  /**
   * Where a stream stands now, for one never heard from yet: its newest
   * kept message (a room's history, or the inbox's latest conversation),
   * or offset 0 -- nothing yet, so everything after is to be had.
   */
  _mark(room, inbox = false) {
    const keep = (key, message) => {
      if (this.positions.has(key)) return;
      this.positions.set(key, message && message.offset
        ? { offset: message.offset, epoch: message.epoch } : { offset: 0, epoch: "" });
    };
    if (room) {
      this.getRecentMessages(room, { limit: 1 })
        .then((messages) => keep(`room:${room}`, messages[0])).catch(() => {});
    }
    if (inbox) {
      this.getConversations({ limit: 1 })
        .then(({ conversations }) => keep("inbox", conversations[0] && conversations[0].last))
        .catch(() => {});
    }
  }

  /** After a reconnect: the rooms back, and what was missed in each stream. */
  _resume() {
    const rooms = {};
    for (const room of this.rooms) {
      const at = this.positions.get(`room:${room}`);
      if (this.options.resume && at) rooms[room] = at;
      else this._write({ type: "join_room", room });
    }
    const direct = this.positions.get("inbox");
    if (!this.options.resume || (!Object.keys(rooms).length && !direct)) return;
    const payload = { rooms };
    if (direct) payload.direct = direct;
    this.request({ type: "resume", payload }, "resumed")
      .then((answer) => this.dispatchEvent(new CustomEvent("resumed", { detail: answer })))
      .catch(() => {});
  }

  _onClose(socket, code, reason) {
    if (socket !== this._socket) return;
    this._socket = null;
    this.dispatchEvent(new CustomEvent("close", { detail: { code, reason } }));
    if (this.state === "closed") return;
    if (FINAL.has(code)) {
      this._setState("closed");
      this._failPending(new AleatoriaError(code === 4001 ? "replaced" : "disconnected",
        reason || "The server closed the connection for good."));
      if (this._rejectOpen) this._rejectOpen(new AleatoriaError("closed", reason));
      return;
    }
    this._failPending(new AleatoriaError("disconnected", "The connection was lost."));
    this._setState("reconnecting");
    this._timer = setTimeout(() => this._open(), this._delay(reason));
  }

  /** Backoff with jitter, or the server's `retry-after=N` hint. */
  _delay(reason) {
    const { initial, max, factor, jitter } = this.options.reconnect;
    const hinted = /retry-after=(\d+)/.exec(reason || "");
    const base = hinted ? Number(hinted[1]) * 1000
      : Math.min(max, initial * factor ** this._attempt);
    this._attempt += 1;
    return base * (1 - jitter * Math.random());
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  _failPending(error) {
    for (const [id, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this._pending.delete(id);
    }
  }

  _onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    this._track(message);
    const id = message.type === "error" ? message.payload && message.payload.messageId
      : message.messageId;
    const pending = id && this._pending.get(id);
    if (pending && (message.type === "error" || pending.types.includes(message.type))) {
      this._pending.delete(id);
      clearTimeout(pending.timer);
      if (message.type === "error") {
        pending.reject(new AleatoriaError(message.payload.code, message.payload.error,
          message.payload));
      } else {
        pending.resolve(message);
      }
    }
    if (message.type === "welcome" && message.payload && message.payload.userId) {
      this.userId = message.payload.userId;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  /**
   * Keep the last offset of each stream, and the rooms this client is in.
   * (A room joined, and the inbox at the first connect, start from their
   * newest kept message: see _mark.)
   */
  _track(message) {
    if (message.type === "room_joined") {
      this.rooms.add(message.room);
      if (this.options.resume) this._mark(message.room);
    }
    if (message.type === "room_left") this.rooms.delete(message.room);
    if (message.type === "resumed") {
      for (const [room, at] of Object.entries(message.payload.rooms || {})) {
        if (at.epoch) this.positions.set(`room:${room}`, { offset: at.offset, epoch: at.epoch });
      }
      const direct = message.payload.direct;
      if (direct && direct.epoch) this.positions.set("inbox", { offset: direct.offset, epoch: direct.epoch });
    }
    if (message.type !== "chat_message" || !message.offset) return;
    const key = message.room ? `room:${message.room}` : "inbox";
    const known = this.positions.get(key);
    if (!known || known.epoch !== message.epoch || known.offset < message.offset) {
      this.positions.set(key, { offset: message.offset, epoch: message.epoch });
    }
  }

  _write(message) {
    this._socket.send(JSON.stringify(message));
  }

  /** Send a message; while not connected it waits in a queue, in order. */
  send(message) {
    if (this.state === "open" && this._socket) this._write(message);
    else if (this.state !== "closed") this._queue.push(message);
    else throw new AleatoriaError("closed", "The client was closed.");
  }

  /**
   * Send `message` and resolve with the answer of one of `types` that
   * repeats its messageId; reject with an AleatoriaError on an `error`.
   */
  request(message, types) {
    const messageId = message.messageId || `c${Date.now().toString(36)}${(++this._counter).toString(36)}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(messageId);
        reject(new AleatoriaError("timeout", `No answer to ${message.type}.`));
      }, this.options.requestTimeout);
      this._pending.set(messageId, { resolve, reject, timer,
        types: Array.isArray(types) ? types : [types] });
      this.send({ ...message, messageId });
    });
  }

  joinRoom(room) {
    return this.request({ type: "join_room", room }, "room_joined");
  }

  leaveRoom(room) {
    return this.request({ type: "leave_room", room }, "room_left");
  }

  async getRooms() {
    return (await this.request({ type: "get_rooms" }, "rooms_list")).payload.rooms;
  }

  async getRoomMembers(room, { limit, after } = {}) {
    const answer = await this.request({ type: "get_room_members", room,
      payload: clean({ limit, after }) }, "room_members");
    return answer.payload;
  }

  async getRecentMessages(room, { limit, before } = {}) {
    const answer = await this.request({ type: "get_recent_messages", room,
      payload: clean({ limit, before }) }, "recent_messages");
    return answer.payload.messages;
  }

  async getDirectMessages(withUser, { limit } = {}) {
    const answer = await this.request({ type: "get_direct_messages",
      payload: clean({ withUser, limit }) }, "direct_messages");
    return answer.payload.messages;
  }

  async getConversations({ limit, before } = {}) {
    return (await this.request({ type: "get_conversations",
      payload: clean({ limit, before }) }, "conversations")).payload;
  }

  async markRead(withUser, offset) {
    return (await this.request({ type: "mark_read", payload: { withUser, offset } },
      "marked_read")).payload;
  }

  /** Chat in a room; resolves with the server's echo of it. */
  say(room, content) {
    return this.request({ type: "chat_message", room, payload: { content } }, "chat_message");
  }

  /** A direct message; resolves with the server's echo of it. */
  write(toUser, content) {
    return this.request({ type: "chat_message", toUser, payload: { content } },
      "chat_message");
  }

  available() {
    this.send({ type: "user_available_webrtc" });
  }

  unavailable() {
    this.send({ type: "user_unavailable_webrtc" });
  }

  /** Ask for a random partner: the assign_role, or null when nobody is free. */
  async requestPeer(currentPeerId) {
    const answer = await this.request({ type: "request_random_peer",
      payload: clean({ currentPeerId }) }, ["assign_role", "no_peer_available"]);
    return answer.type === "assign_role" ? answer.payload : null;
  }

  /** Relay signaling to `toUser` (offer, answer, candidate or hangup). */
  signal(type, toUser, payload = {}) {
    this.send({ type, toUser, payload });
  }
}

function clean(fields) {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== ""));
}

/**
 * Random video calls over a Client: `available()`, `next()`, `hangup()`,
 * and an RTCPeerConnection per call, driven by perfect negotiation with
 * the polite/impolite role the server assigns. Events: `call` (detail:
 * {peerId, role}), `track` (detail: the RTCTrackEvent), `connection`
 * (detail: the connection state) and `ended` (detail: {peerId, reason}).
 */
export class Caller extends EventTarget {
  constructor(client, { stream = null, rtcConfig = {},
    RTCPeerConnection = globalThis.RTCPeerConnection } = {}) {
    super();
    this.client = client;
    this.stream = stream;
    this.rtcConfig = rtcConfig;
    this.RTCPeerConnection = RTCPeerConnection;
    this.peerId = null;
    this.polite = false;
    this.pc = null;
    this._makingOffer = false;
    this._ignoreOffer = false;
    client.addEventListener("assign_role", (e) => this._start(e.detail.payload));
    for (const type of ["webrtc_offer", "webrtc_answer", "webrtc_candidate"]) {
      client.addEventListener(type, (e) => this._signaled(e.detail, this.pc));
    }
    client.addEventListener("hangup", (e) => {
      if (e.detail.fromUser === this.peerId) {
        this._end((e.detail.payload && e.detail.payload.reason) || "hangup");
      }
    });
  }

  /** Enter the pool: somebody else's `next()` may pick this user. */
  available() {
    this.client.available();
  }

  /** Leave the current call, if any, and ask for a new partner; true if one was found. */
  async next() {
    const skipped = this.peerId;
    if (skipped) this._end("skipped", true);
    this.client.available();
    const match = await this.client.requestPeer(skipped || undefined);
    if (match && match.peerId !== this.peerId) this._start(match);
    return Boolean(match);
  }

  /** End the call, telling the partner. */
  hangup() {
    if (!this.peerId) return;
    this.client.signal("hangup", this.peerId);
    this._end("hangup", true);
  }

  _start({ peerId, role }) {
    if (this.peerId === peerId && this.pc) return;
    if (this.peerId) this._end("replaced", true);
    this.peerId = peerId;
    this.polite = role === "polite";
    this._connect();
    this.dispatchEvent(new CustomEvent("call", { detail: { peerId, role } }));
  }

  /** A fresh RTCPeerConnection for the call, its tracks added, watched. */
  _connect() {
    const peerId = this.peerId;
    this._makingOffer = false;
    this._ignoreOffer = false;
    this._answerPending = false;
    this._early = [];
    const pc = this.pc = new this.RTCPeerConnection(this.rtcConfig);
    pc.onnegotiationneeded = async () => {
      // The impolite side makes the first offer; the polite one answers it
      // with its tracks. Both offering at once from the start, the polite
      // side rolling back, left Chromium at times gathering no candidate
      // at all. Later offers may cross: perfect negotiation sorts them out.
      if (this.polite && !pc.remoteDescription) return;
      try {
        this._makingOffer = true;
        await pc.setLocalDescription();
        if (this.pc === pc) {
          this.client.signal("webrtc_offer", peerId, { description: pc.localDescription.toJSON() });
        }
      } catch (error) {
        this.dispatchEvent(new CustomEvent("error", { detail: error }));
      } finally {
        this._makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.pc === pc) {
        this.client.signal("webrtc_candidate", peerId, { candidate: candidate.toJSON() });
      }
    };
    pc.ontrack = (event) => this.dispatchEvent(new CustomEvent("track", { detail: event }));
    pc.onconnectionstatechange = () => this.dispatchEvent(
      new CustomEvent("connection", { detail: pc.connectionState }));
    if (this.stream) {
      for (const track of this.stream.getTracks()) pc.addTrack(track, this.stream);
    } else {
      pc.addTransceiver("video", { direction: "recvonly" });
    }
  }

  async _signaled(message, pc) {
    if (!pc || pc !== this.pc || message.fromUser !== this.peerId) return;
    const { description, candidate } = message.payload || {};
    try {
      if (description) {
        // an offer that follows an answer still being applied is no collision
        const ready = !this._makingOffer &&
          (pc.signalingState === "stable" || this._answerPending);
        const collision = description.type === "offer" && !ready;
        this._ignoreOffer = !this.polite && collision;
        if (this._ignoreOffer) return;
        this._answerPending = description.type === "answer";
        await pc.setRemoteDescription(description);
        this._answerPending = false;
        await this._addEarlyCandidates(pc);
        if (description.type === "offer") {
          await pc.setLocalDescription();
          this.client.signal("webrtc_answer", this.peerId,
            { description: pc.localDescription.toJSON() });
        }
      } else if (candidate) {
        if (!pc.remoteDescription) {
          // it came before the description it belongs to: a partner that
          // rolled its offer back sends no candidate twice, so keep it
          this._early.push(candidate);
          return;
        }
        try {
          await pc.addIceCandidate(candidate);
        } catch (error) {
          if (!this._ignoreOffer) throw error;
        }
      }
    } catch (error) {
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
    }
  }

  async _addEarlyCandidates(pc) {
    for (const candidate of this._early.splice(0)) {
      try {
        await pc.addIceCandidate(candidate);
      } catch {
        // of a description that was rolled back: not this session's
      }
    }
  }

  _end(reason, local = false) {
    const peerId = this.peerId;
    if (!peerId) return;
    this.peerId = null;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.dispatchEvent(new CustomEvent("ended", { detail: { peerId, reason, local } }));
  }
}
