// Aleatoria's JavaScript client: one ES module, no dependencies, for
// browsers and Node >= 20 (global WebSocket; on Node 20, run with
// --experimental-websocket or pass `WebSocket`). See README.md beside it.

/**
 * A refusal: the server's answer to a request or a connection, or the
 * client's own. On a request's, `sent` says whether it left the client:
 * false, the server never had it and never will.
 */
export class AleatoriaError extends Error {
  constructor(code, message, payload = {}) {
    super(message);
    this.name = "AleatoriaError";
    this.code = code;
    this.payload = payload;
    if (payload.failed) this.failed = payload.failed;
  }
}

const DEFAULTS = {
  room: "",
  token: "",
  getToken: null,
  reconnectToken: "",
  positions: null,
  reconnect: { initial: 500, max: 30000, factor: 2, jitter: 0.5 },
  requestTimeout: 10000,
  openTimeout: 10000,
  connectTimeout: 30000,
  resume: true,
};

/** Close codes after which reconnecting would only fight another connection. */
const FINAL = new Set([4001, 4003]);

/** Refusals that may pass by themselves: a reconnect tries again after them. */
const PASSING = new Set(["rate_limited", "unavailable"]);

/** How long an open socket that reported an error may take to report its close. */
const CLOSE_AFTER_ERROR = 1000;

/**
 * One user's connection to Aleatoria: reconnects by itself, queues what is
 * sent while it is away, matches requests to their answers, and resumes
 * every stream it was reading after a reconnect. See README.md for its
 * events and the rules its promises keep.
 */
export class Client extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options,
      reconnect: { ...DEFAULTS.reconnect, ...(options.reconnect || {}) } };
    this.WebSocket = this.options.WebSocket || globalThis.WebSocket;
    this.state = "idle";
    this.userId = this.options.userId || subject(this.options.token);
    this.reconnectToken = this.options.reconnectToken || "";
    this.rooms = new Set();
    this.iceServers = []; // the latest the server gave: for an RTCPeerConnection
    this.positions = new Map(); // "room:<name>" or "inbox" -> {offset, epoch}
    this._restore(this.options.positions);
    this._queue = []; // {message, messageId?}: not written yet
    this._pending = new Map(); // messageId -> {resolve, reject, types, timer, written}
    this._counter = 0;
    this._attempt = 0;
    this._tries = 0; // attempts begun: a stale one's callbacks are ignored
    this._timer = null;
    this._socket = null;
    this._live = false; // the current socket is open (and welcomed, when anonymous)
    this._opened = 0;
    this._connecting = null; // connect()'s promise, until it settles
    this._holding = null; // a resume under way: {keys, held}
  }

  /**
   * Open the connection: resolves once it is open, or rejects with an
   * AleatoriaError -- the refusal's code, or `unreachable` after
   * `connectTimeout` -- and the client is closed.
   */
  connect() {
    if (this.state !== "idle" && this.state !== "closed") return this._firstOpen;
    this._firstOpen = new Promise((resolve, reject) => {
      const deadline = setTimeout(() => this._stop(new AleatoriaError("unreachable",
        `No connection within ${this.options.connectTimeout} ms.`)), this.options.connectTimeout);
      this._connecting = { resolve, reject, deadline };
    });
    this._setState(this._opened ? "reconnecting" : "connecting");
    this._try();
    return this._firstOpen;
  }

  /** Close for good: no reconnecting; pending and queued requests are rejected. */
  close() {
    this._stop(new AleatoriaError("closed", "The client was closed."));
  }

  /**
   * Where each stream stands, to save and give back as the `positions`
   * option after a reload: the payload of a `resume`.
   */
  getPositions() {
    const rooms = {};
    for (const [key, at] of this.positions) {
      if (key.startsWith("room:") && this.rooms.has(key.slice(5))) rooms[key.slice(5)] = at;
    }
    const inbox = this.positions.get("inbox");
    return inbox ? { rooms, direct: inbox } : { rooms };
  }

  _restore(saved) {
    if (!saved) return;
    for (const [room, at] of Object.entries(saved.rooms || {})) {
      this.rooms.add(room);
      this.positions.set(`room:${room}`, { offset: at.offset, epoch: at.epoch });
    }
    if (saved.direct) {
      this.positions.set("inbox", { offset: saved.direct.offset, epoch: saved.direct.epoch });
    }
  }

  /** One attempt: a token if `getToken` gives them, then a socket. */
  async _try() {
    const attempt = ++this._tries;
    let token = this.options.token;
    if (this.options.getToken) {
      try {
        token = await bounded(this.options.getToken(), this.options.openTimeout,
          "no token within openTimeout");
      } catch (error) {
        if (attempt !== this._tries || this.state === "closed") return;
        // at connect(), the app hears of it; later, the token's source may come back
        if (this._connecting) this._stop(new AleatoriaError("no_token", `getToken failed: ${error}`));
        else this._failed(null);
        return;
      }
      if (attempt !== this._tries || this.state === "closed") return;
      if (!this.options.userId) this.userId = subject(token) || this.userId;
    }
    const query = new URLSearchParams();
    if (this.options.userId) query.set("userId", this.options.userId);
    else if (this.reconnectToken) query.set("reconnectToken", this.reconnectToken);
    if (this.options.room) query.set("room", this.options.room);
    if (token) query.set("token", token);
    if (typeof this.WebSocket !== "function") {
      this._stop(new AleatoriaError("unsupported", "No WebSocket here: on Node 20 run node " +
        "with --experimental-websocket, or pass { WebSocket } (e.g. from the ws package)."));
      return;
    }
    let socket;
    try {
      socket = new this.WebSocket(`${this.url}?${query}`);
    } catch (error) {
      this._stop(new AleatoriaError("invalid_request", error.message));
      return;
    }
    this._socket = socket;
    this._live = false;
    socket.onopen = () => this._onOpen(socket);
    socket.onmessage = (event) => {
      if (socket === this._socket) this._onMessage(event.data);
    };
    socket.onclose = (event) => this._ended(socket, event.code, event.reason);
    socket.onerror = () => this._errored(socket);
    this._openTimer = setTimeout(() => this._ended(socket, 1006, "no answer"),
      this.options.openTimeout);
    this._query = query;
  }

  /**
   * An `error` ends an attempt (Node's WebSocket reports a failed attempt
   * with nothing else); an open socket reports its close after it, but
   * is given up if it does not.
   */
  _errored(socket) {
    if (socket !== this._socket) return;
    if (!this._live) this._ended(socket, 1006, "");
    else if (!this._errorTimer) {
      this._errorTimer = setTimeout(() => this._ended(socket, 1006, ""), CLOSE_AFTER_ERROR);
    }
  }

  _onOpen(socket) {
    if (socket !== this._socket) return;
    const named = this.options.userId || this.options.token || this.options.getToken;
    if (named) this._ready(); // else the server names the client: ready at its welcome
  }

  /** The connection is open (and, anonymous, knows who it is). */
  _ready() {
    clearTimeout(this._openTimer);
    const again = this._opened > 0;
    this._live = true;
    this._opened += 1;
    this._attempt = 0;
    this.rooms.add(this.options.room || "Lobby");
    if (again || this.positions.size) this._resume();
    else if (this.options.resume) this._mark(this.options.room || "Lobby", true);
    for (const { message, messageId } of this._queue.splice(0)) this._write(message, messageId);
    this._setState("open");
    this.dispatchEvent(new CustomEvent("open", { detail: { reconnected: again } }));
    const connecting = this._connecting;
    if (connecting) {
      this._connecting = null;
      clearTimeout(connecting.deadline);
      connecting.resolve(this);
    }
  }

  /** The socket is gone, whether it opened or not: its handlers are dropped. */
  _ended(socket, code, reason) {
    if (socket !== this._socket) return;
    this._socket = null;
    clearTimeout(this._openTimer);
    clearTimeout(this._errorTimer);
    this._errorTimer = null;
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.onerror = () => {}; // closing a socket still connecting may report an error
    if (socket.readyState === 0 || socket.readyState === 1) socket.close(1000);
    if (this._live) {
      this._live = false;
      this._lost(code, reason);
    } else if (this.state !== "closed") {
      this._refused(this._query);
    }
  }

  /** An open connection ended. */
  _lost(code, reason) {
    this._release();
    this.dispatchEvent(new CustomEvent("close", { detail: { code, reason } }));
    if (this.state === "closed") return;
    if (FINAL.has(code)) {
      this._stop(new AleatoriaError(code === 4001 ? "replaced" : "disconnected",
        reason || "The server closed the connection for good."));
      return;
    }
    this._failWritten(new AleatoriaError("disconnected",
      "The connection was lost before the answer came: the server may or may not have it."));
    this._setState("reconnecting");
    this._timer = setTimeout(() => this._try(), this._delay(reason));
  }

  /** An attempt failed: ask the server why (browsers and Node cannot see it). */
  async _refused(query) {
    const attempt = this._tries;
    const verdict = await this._verdict(query);
    if (attempt !== this._tries || this.state === "closed") return;
    this._failed(verdict);
  }

  /**
   * After a failed attempt: stop on a refusal that will not pass (any, for
   * `connect()`), else try again later.
   */
  _failed(refusal) {
    if (refusal) this.dispatchEvent(new CustomEvent("refused", { detail: refusal }));
    if (refusal && (this._connecting || !PASSING.has(refusal.code))) {
      this._stop(refusal);
      return;
    }
    this._setState(this._opened ? "reconnecting" : "connecting");
    this._timer = setTimeout(() => this._try(), this._delay(""));
  }

  /**
   * What the server says of the handshake just refused: a plain GET of the
   * same URL answers the refusal (docs/protocol.rst, "HTTP"). An
   * AleatoriaError with its code, or null: no answer, or it would admit now.
   */
  async _verdict(query) {
    const fetch = this.options.fetch || globalThis.fetch;
    if (!fetch) return null;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.options.openTimeout);
    try {
      const response = await fetch(`${this.url.replace(/^ws/, "http")}?${query}`,
        { signal: abort.signal });
      const answer = await response.json();
      if (response.status === 426 || typeof answer.code !== "string") return null;
      return new AleatoriaError(answer.code, answer.error || `HTTP ${response.status}`,
        { ...answer, status: response.status });
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closed for good, with `error`: every request not answered is rejected with it. */
  _stop(error) {
    this._tries += 1;
    clearTimeout(this._timer);
    this._setState("closed");
    if (this._socket) this._ended(this._socket, 1000, "");
    const connecting = this._connecting;
    if (connecting) {
      this._connecting = null;
      clearTimeout(connecting.deadline);
      connecting.reject(error);
    }
    this._queue = [];
    for (const messageId of [...this._pending.keys()]) this._settle(messageId, null, error);
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

  /** The connection is lost: requests already written may never be answered. */
  _failWritten(error) {
    for (const [messageId, pending] of [...this._pending]) {
      if (pending.written) this._settle(messageId, null, error);
    }
  }

  /**
   * Settle a request, once: resolved with `answer`, or rejected with (a
   * copy of) `error` saying whether it was `sent`. One not sent leaves
   * the queue: rejected, it is never sent.
   */
  _settle(messageId, answer, error) {
    const pending = this._pending.get(messageId);
    if (!pending) return;
    this._pending.delete(messageId);
    clearTimeout(pending.timer);
    if (!pending.written) this._queue = this._queue.filter((q) => q.messageId !== messageId);
    if (!error) {
      pending.resolve(answer);
      return;
    }
    const rejection = new AleatoriaError(error.code, error.message, error.payload);
    rejection.sent = pending.written;
    pending.reject(rejection);
  }

  /** Wait `requestTimeout` for what settles a request: its turn to be sent, then its answer. */
  _expire(messageId, pending, type) {
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => this._settle(messageId, null,
      new AleatoriaError("timeout", pending.written ? `No answer to ${type}.`
        : `${type} was not sent: no connection within requestTimeout.`)),
    this.options.requestTimeout);
  }

  _onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const holding = this._holding;
    if (holding) {
      const key = streamOf(message);
      if (key && holding.keys.has(key)) {
        this._answer(message); // an echo settles its request now, its event comes in order
        holding.held.push({ key, message });
        return;
      }
      if (message.type === "resumed") this._release();
    }
    this._handle(message);
  }

  /**
   * While a resume is under way, the chat messages of the streams it names
   * are held: the server sends first what reached the connection live
   * before the `resume`, then the older ones it replays. At the `resumed`
   * (or when the resume fails, or the connection is lost), they are
   * handled, each stream in order of offset.
   */
  _release() {
    const holding = this._holding;
    if (!holding) return;
    this._holding = null;
    const streams = new Map();
    for (const { key, message } of holding.held) {
      if (!streams.has(key)) streams.set(key, []);
      streams.get(key).push(message);
    }
    for (const messages of streams.values()) {
      messages.sort((a, b) => a.offset - b.offset);
      for (const message of messages) this._handle(message);
    }
  }

  /** A message from the server: tracked, matched to its request, dispatched. */
  _handle(message) {
    let identity = null;
    if (message.type === "welcome" && message.payload) {
      const { userId, reconnectToken } = message.payload;
      if (userId) this.userId = userId;
      if (reconnectToken && reconnectToken !== this.reconnectToken) {
        this.reconnectToken = reconnectToken;
        identity = { userId: this.userId, reconnectToken };
      }
    }
    this._track(message);
    if (message.type === "ice_servers" || message.type === "assign_role") {
      this._keepIceServers(message.payload);
    }
    this._answer(message);
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
    if (identity) this.dispatchEvent(new CustomEvent("identity", { detail: identity }));
    if (message.type === "resumed") this._unrecovered(message.payload || {});
    if (message.type === "welcome" && !this._live && this._socket) this._ready();
  }

  /** The ICE servers of an `ice_servers` or `assign_role`, kept and told (`iceservers`). */
  _keepIceServers(payload) {
    if (!payload || !Array.isArray(payload.iceServers)) return;
    this.iceServers = payload.iceServers;
    this.dispatchEvent(new CustomEvent("iceservers", { detail: payload.iceServers }));
  }

  /**
   * Settle the request `message` answers: an `error` naming its messageId
   * rejects it; one of its reply types with its messageId resolves it (a
   * chat message only as the sender's own copy: the echo).
   */
  _answer(message) {
    if (message.type === "error") {
      const payload = message.payload || {};
      if (payload.messageId && this._pending.has(payload.messageId)) {
        this._settle(payload.messageId, null,
          new AleatoriaError(payload.code, payload.error, payload));
      }
      return;
    }
    const pending = message.messageId && this._pending.get(message.messageId);
    if (!pending || !pending.types.includes(message.type)) return;
    if (message.type === "chat_message" && message.incoming) return;
    this._settle(message.messageId, message);
  }

  /** One `unrecovered` event per stream a resume could not replay. */
  _unrecovered({ rooms = {}, direct }) {
    for (const [room, at] of Object.entries(rooms)) {
      if (at.recovered !== false) continue;
      if (at.code) {
        this.rooms.delete(room);
        this.positions.delete(`room:${room}`);
      }
      this.dispatchEvent(new CustomEvent("unrecovered", { detail: { ...at, room } }));
    }
    if (direct && direct.recovered === false) {
      this.dispatchEvent(new CustomEvent("unrecovered", { detail: { ...direct, direct: true } }));
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

  /** After a reconnect (or a reload): the rooms back, and what was missed in each stream. */
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
    const keys = Object.keys(rooms).map((room) => `room:${room}`);
    this._holding = { keys: new Set(direct ? [...keys, "inbox"] : keys), held: [] };
    this._askResume(payload, this._holding);
  }

  /**
   * Send the `resume`. Refused as too fast (the user's rate, or its reads
   * under way), it is sent again, the same, after the server's
   * `retryAfter`, the streams held meanwhile; failed otherwise, what was
   * held is let go.
   */
  _askResume(payload, holding) {
    const socket = this._socket;
    const current = () => this._holding === holding && this._socket === socket && this._live;
    this.request({ type: "resume", payload }, "resumed").catch((error) => {
      if (error.code === "rate_limited" && current()) {
        const wait = Number((error.payload || {}).retryAfter) || 1000;
        setTimeout(() => {
          if (current()) this._askResume(payload, holding);
        }, wait);
      } else if (this._holding === holding) {
        this._release();
      }
    });
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
    if (message.type === "room_left") {
      this.rooms.delete(message.room);
      this.positions.delete(`room:${message.room}`);
    }
    if (message.type === "resumed") {
      const { rooms = {}, direct } = message.payload || {};
      for (const [room, at] of Object.entries(rooms)) {
        if (!at.code) this._advance(`room:${room}`, at);
      }
      if (direct) this._advance("inbox", direct);
    }
    const key = streamOf(message);
    if (key) this._advance(key, message);
  }

  /** A stream is at `at` ({offset, epoch}) now, unless it was further on in the same epoch. */
  _advance(key, { offset = 0, epoch = "" }) {
    const known = this.positions.get(key);
    if (!known || known.epoch !== epoch || known.offset < offset) {
      this.positions.set(key, { offset, epoch });
    }
  }

  /**
   * Write `message` to the socket if it is open still; else (it is
   * closing: the `close` is on its way) it goes back to the queue, for the
   * next connection. A request written waits `requestTimeout` anew.
   */
  _write(message, messageId) {
    if (!this._socket || this._socket.readyState !== 1) {
      this._queue.push({ message, messageId });
      return;
    }
    this._socket.send(JSON.stringify(message));
    const pending = messageId && this._pending.get(messageId);
    if (pending) {
      pending.written = true;
      this._expire(messageId, pending, message.type);
    }
  }

  /** Send a message; while not connected it waits in a queue, in order. */
  send(message) {
    if (this.state === "closed") throw new AleatoriaError("closed", "The client was closed.");
    if (this._live) this._write(message);
    else this._queue.push({ message });
  }

  /**
   * Send `message` and resolve with the answer of one of `types` that
   * repeats its messageId; reject with an AleatoriaError on an `error`
   * naming it. While not connected it waits in the queue; rejected, it is
   * never sent (README.md, "Requests").
   */
  request(message, types) {
    if (this.state === "closed") {
      return Promise.reject(new AleatoriaError("closed", "The client was closed."));
    }
    const messageId = message.messageId || this._newId();
    if (this._pending.has(messageId)) {
      return Promise.reject(new AleatoriaError("invalid_message",
        `messageId ${messageId} is already waiting for an answer.`));
    }
    const envelope = { ...message, messageId };
    return new Promise((resolve, reject) => {
      const pending = { resolve, reject, written: false,
        types: Array.isArray(types) ? types : [types] };
      this._pending.set(messageId, pending);
      this._expire(messageId, pending, message.type);
      if (this._live) this._write(envelope, messageId);
      else this._queue.push({ message: envelope, messageId });
    });
  }

  _newId() {
    this._counter += 1;
    return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}${this._counter.toString(36)}`;
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

  /** Enter the pool; with `interests`, a request that shares one picks this user first. */
  available(interests) {
    this.send(interests && interests.length
      ? { type: "user_available_webrtc", payload: { interests } }
      : { type: "user_available_webrtc" });
  }

  unavailable() {
    this.send({ type: "user_unavailable_webrtc" });
  }

  /**
   * Ask for a random partner: the assign_role, or null when nobody is free.
   * With `interests`, one who shares one is picked first; with
   * `interestsOnly`, only such a one (else this user waits in the pool).
   */
  async requestPeer(currentPeerId, { interests, interestsOnly } = {}) {
    const wanted = interests && interests.length ? interests : undefined;
    const answer = await this.request({ type: "request_random_peer",
      payload: clean({ currentPeerId, interests: wanted,
        interestsOnly: wanted && interestsOnly ? true : undefined }) },
    ["assign_role", "no_peer_available"]);
    return answer.type === "assign_role" ? answer.payload : null;
  }

  /** Fresh ICE servers (TURN credentials expire): `{iceServers, ttl, expiresAt}`. */
  async getIceServers() {
    return (await this.request({ type: "get_ice_servers" }, "ice_servers")).payload;
  }

  /** Relay signaling to `toUser` (offer, answer, candidate or hangup). */
  signal(type, toUser, payload = {}) {
    this.send({ type, toUser, payload });
  }

  /**
   * Block `userId` until unblocked: the two are never paired again, and
   * direct messages and signaling between them, either way, are refused
   * `forbidden`; a call between them ends (the blocked user hears only
   * that it ended). Resolves with `{userId}` (the same for a user already
   * blocked); rejects `quota_exceeded` past the server's `--max-blocks`.
   */
  async block(userId) {
    return (await this.request({ type: "block_user", payload: { userId } },
      "user_blocked")).payload;
  }

  /** No longer block `userId`; resolves with `{userId}` (the same if it was not blocked). */
  async unblock(userId) {
    return (await this.request({ type: "unblock_user", payload: { userId } },
      "user_unblocked")).payload;
  }

  /** The users this user blocks, sorted. */
  async getBlocked() {
    return (await this.request({ type: "get_blocked" }, "blocked_users")).payload.users;
  }

  /**
   * Report `userId` to the operator: `reason` is one of REPORT_REASONS,
   * `details` (optional) up to 500 characters of one's own words. The
   * report blocks `userId` as `block()` does (ending a call with them).
   * Resolves with `{userId, reportId}`; rejects `invalid_message` (a
   * reason not in the list, details too long) or `rate_limited` past the
   * server's `--reports-per-hour` (nothing filed, nobody blocked).
   */
  async report(userId, reason, details) {
    return (await this.request({ type: "report_user",
      payload: clean({ userId, reason, details }) }, "user_reported")).payload;
  }
}

/** Why a user may report another (`report_user`'s `reason`). */
export const REPORT_REASONS = Object.freeze(["spam", "nudity", "minor", "harassment", "other"]);

/** The `sub` of a JWT, or "" (the server checks tokens; this only names the user early). */
function subject(token) {
  try {
    const claims = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(claims)).sub || "";
  } catch {
    return "";
  }
}

/** The stream of a numbered chat message ("room:<name>" or "inbox"), or "". */
function streamOf(message) {
  if (message.type !== "chat_message" || !message.offset) return "";
  return message.room ? `room:${message.room}` : "inbox";
}

/** `promise`, or a rejection with `message` if it has not settled within `ms`. */
function bounded(promise, ms, message) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function clean(fields) {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== ""));
}

/**
 * Random video calls over a Client: `available()`, `next()`, `hangup()`,
 * `block()` and `report()` of the partner, and an RTCPeerConnection per
 * call, driven by perfect negotiation with
 * the polite/impolite role the server assigns, with the ICE servers (STUN,
 * TURN) the server gives for the call unless `rtcConfig` names its own.
 * Events: `call` (detail: {peerId, role, commonInterests}), `track` (detail: the
 * RTCTrackEvent), `connection` (detail: the connection state), `ended`
 * (detail: {peerId, reason}), and around a blip of either side's socket
 * `reconnecting` and `reconnected` (detail: {peerId, side}): the call and
 * its RTCPeerConnection are kept, and once both are back the impolite
 * side restarts ICE; back without the call resumed within `resumeWait`
 * ms, it has ended (`ended`, reason `disconnected`). Skipped by the partner's `next()`, it is available
 * again (back in the pool, as the partner is) unless `requeue` is false.
 */
export class Caller extends EventTarget {
  constructor(client, { stream = null, rtcConfig = {}, requeue = true, interests = [],
    fallbackAfter = 0, resumeWait = 5000,
    RTCPeerConnection = globalThis.RTCPeerConnection } = {}) {
    super();
    this.client = client;
    this.requeue = requeue;
    this.interests = interests;
    this.fallbackAfter = fallbackAfter;
    this._searching = null; // when the search for this partner began (ms)
    this._fallback = null; // the timer that asks for anyone once fallbackAfter is over
    this.resumeWait = resumeWait;
    this._away = false; // this side's socket was lost in the call, not resumed yet
    this._awaiting = null; // back: the timer that ends the call if no resume comes
    this.stream = stream;
    this.rtcConfig = rtcConfig;
    this.RTCPeerConnection = RTCPeerConnection;
    this.peerId = null;
    this.polite = false;
    this.pc = null;
    this._makingOffer = false;
    this._ignoreOffer = false;
    client.addEventListener("assign_role", (e) => this._start(e.detail.payload));
    client.addEventListener("peer_reconnected", (e) => {
      const { peerId } = e.detail.payload || {};
      if (peerId && peerId === this.peerId) this._resumed("peer");
    });
    client.addEventListener("state", (e) => {
      if (e.detail !== "reconnecting" || !this.peerId) return;
      clearTimeout(this._awaiting); // lost again before the resume came
      if (!this._away) {
        this._away = true;
        this.dispatchEvent(new CustomEvent("reconnecting",
          { detail: { peerId: this.peerId, side: "self" } }));
      }
    });
    // Back, but a call that ended meanwhile (the partner left, the grace
    // ran out) is told by nothing: no resumed assign_role within
    // resumeWait means it is over.
    client.addEventListener("open", () => {
      if (!this._away || !this.peerId) return;
      const peerId = this.peerId;
      clearTimeout(this._awaiting);
      this._awaiting = setTimeout(() => {
        if (this._away && this.peerId === peerId) this._end("disconnected");
      }, this.resumeWait);
    });
    for (const type of ["webrtc_offer", "webrtc_answer", "webrtc_candidate"]) {
      client.addEventListener(type, (e) => this._signaled(e.detail, this.pc));
    }
    client.addEventListener("hangup", (e) => {
      if (e.detail.fromUser !== this.peerId) return;
      const reason = (e.detail.payload && e.detail.payload.reason) || "hangup";
      this._end(reason);
      if (reason === "skipped" && this.requeue) this.client.available(this.interests);
    });
  }

  /** Enter the pool: somebody else's `next()` may pick this user. */
  available() {
    this.client.available(this.interests);
  }

  /**
   * Leave the current call, if any, and ask for a new partner; true if one
   * was found. With `interests`, one who shares one is preferred; for the
   * first `fallbackAfter` seconds of a search, only such a one -- and when
   * none was found by then, it asks once more, for anyone (the `call`
   * event says if that found somebody).
   */
  async next() {
    const skipped = this.peerId;
    if (skipped) this._end("skipped", true);
    clearTimeout(this._fallback);
    if (this._searching === null) this._searching = Date.now();
    const left = this._searching + this.fallbackAfter * 1000 - Date.now();
    const interestsOnly = this.interests.length > 0 && left > 0;
    this.client.available(this.interests);
    const match = await this.client.requestPeer(skipped || undefined,
      { interests: this.interests, interestsOnly });
    if (match) this._searching = null;
    if (match && match.peerId !== this.peerId) this._start(match);
    if (!match && interestsOnly) {
      this._fallback = setTimeout(() => {
        if (this._searching !== null && !this.peerId) this.next().catch(() => {});
      }, left);
    }
    return Boolean(match);
  }

  /** Stop looking for a partner (and end the call, if any): out of the pool. */
  stop() {
    clearTimeout(this._fallback);
    this._searching = null;
    this.hangup();
    this.client.unavailable();
  }

  /** End the call, telling the partner. */
  hangup() {
    if (!this.peerId) return;
    this.client.signal("hangup", this.peerId);
    this._end("hangup", true);
  }

  /**
   * Block the partner: resolves with the server's answer (`{userId}`)
   * once it has the block, which ended the call -- the partner hears only
   * that it ended -- and this side says `ended` (reason `blocked`,
   * local). Refused (`quota_exceeded`...), the call goes on. Then
   * `next()` to move on, or `stop()`.
   */
  block() {
    return this._endWith("blocked", "block", (peerId) => this.client.block(peerId));
  }

  /**
   * Report the partner (`reason`, `details` as `client.report()` takes
   * them), which blocks it and so ends the call, as `block()` does:
   * resolves with `{userId, reportId}`, the call over (`ended`, reason
   * `reported`, local). Refused (`rate_limited`, `invalid_message`...),
   * nothing was filed and the call goes on.
   */
  report(reason, details) {
    return this._endWith("reported", "report",
      (peerId) => this.client.report(peerId, reason, details));
  }

  /**
   * `request(peerId)` of the partner; once it is answered the call is
   * over, for `reason`. With no partner, rejected at once (`sent: false`).
   */
  async _endWith(reason, verb, request) {
    const peerId = this.peerId;
    if (!peerId) {
      const error = new AleatoriaError("invalid_message", `Not in a call: nobody to ${verb}.`);
      error.sent = false;
      throw error;
    }
    const answer = await request(peerId);
    // the server ended the match: no hangup comes to this side
    if (this.peerId === peerId) this._end(reason, true);
    return answer;
  }

  _start({ peerId, role, iceServers, resumed, commonInterests = [] }) {
    if (this.peerId === peerId && this.pc) {
      // this user's socket came back within the call's grace: same call
      if (resumed) this._resumed("self");
      return;
    }
    if (this.peerId) this._end("replaced", true);
    this._searching = null;
    clearTimeout(this._fallback);
    this.peerId = peerId;
    this._iceServers = iceServers || this.client.iceServers;
    this.polite = role === "polite";
    this._connect();
    this.dispatchEvent(new CustomEvent("call", { detail: { peerId, role, commonInterests } }));
  }

  /**
   * The call is whole again after a blip of `side` ("self" or "peer"):
   * the path the media took may be gone (a new address, a new network),
   * so the impolite side restarts ICE -- its next offer, made by
   * onnegotiationneeded, gathers afresh; the polite side answers it.
   */
  _resumed(side) {
    const pc = this.pc;
    if (!pc) return;
    if (side === "self") this._settleAway();
    this.dispatchEvent(new CustomEvent("reconnected", { detail: { peerId: this.peerId, side } }));
    if (!this.polite) pc.restartIce();
  }

  /** A fresh RTCPeerConnection for the call, its tracks added, watched. */
  _connect() {
    const peerId = this.peerId;
    this._makingOffer = false;
    this._ignoreOffer = false;
    this._answerPending = false;
    this._early = [];
    // the server's ICE servers, fresh for this call, unless the app gives its own
    const pc = this.pc = new this.RTCPeerConnection(
      { iceServers: this._iceServers, ...this.rtcConfig });
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

  _settleAway() {
    this._away = false;
    clearTimeout(this._awaiting);
    this._awaiting = null;
  }

  _end(reason, local = false) {
    const peerId = this.peerId;
    if (!peerId) return;
    this._settleAway();
    this.peerId = null;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.dispatchEvent(new CustomEvent("ended", { detail: { peerId, reason, local } }));
  }
}
