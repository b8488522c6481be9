// Types for aleatoria.js.

export interface Envelope {
  type: string;
  fromUser?: string;
  toUser?: string;
  room?: string;
  payload?: any;
  messageId?: string;
  createTime?: string;
  incoming?: boolean;
  /** Its place in its stream (a room's, or the reader's inbox). */
  offset?: number;
  /** The stream's epoch: changes when its history is lost or begun again. */
  epoch?: string;
}

export interface Position { offset: number; epoch: string; }

/** Where each stream stands: what `getPositions()` gives and the `positions` option takes. */
export interface Positions { rooms: Record<string, Position>; direct?: Position; }

export type State = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface ClientOptions {
  /** Who the client is; leave out with --anonymous (the server names it) or a token. */
  userId?: string;
  room?: string;
  /** A JWT, the same for every connection. */
  token?: string;
  /** Gives the JWT for each connection, called before each (re)connect. */
  getToken?: () => string | Promise<string>;
  /** With --anonymous: come back as the user of a token saved from an `identity` event. */
  reconnectToken?: string;
  /** Where the streams stood, saved from `getPositions()` before a reload: resumed from there. */
  positions?: Positions;
  /**
   * A WebSocket class, where there is no global one (Node 20 without the
   * flag) or it will not do (the `ws` package, to send an Origin).
   */
  WebSocket?: any;
  /** The fetch that asks why an attempt failed (default: the global one). */
  fetch?: typeof fetch;
  /** Backoff between attempts, in ms. */
  reconnect?: { initial?: number; max?: number; factor?: number; jitter?: number };
  /** Ms before a request without an answer rejects with `timeout` (default 10000). */
  requestTimeout?: number;
  /** Ms one attempt may take to open (default 10000). */
  openTimeout?: number;
  /** Ms `connect()` keeps trying before it rejects with `unreachable` (default 30000). */
  connectTimeout?: number;
  /** Resume every stream after a reconnect (default true). */
  resume?: boolean;
}

/**
 * A refusal: the server's answer to a request or a connection, or the
 * client's own (`timeout`, `disconnected`, `closed`, `replaced`,
 * `unreachable`, `no_token`, `unsupported`: no WebSocket to use).
 */
export class AleatoriaError extends Error {
  code: string;
  payload: any;
  /** For `unavailable` of a chat message: what failed ("delivery", "history"). */
  failed?: string[];
  /**
   * On a request's rejection: whether it left the client. `false`: the
   * server never had it and never will.
   */
  sent?: boolean;
}

/** What `ice_servers` carries, and `getIceServers()` resolves with. */
export interface IceServers {
  iceServers: RTCIceServer[];
  /** Seconds the TURN credentials are good for, from when they were made. */
  ttl: number;
  /** When they expire (RFC 3339). */
  expiresAt: string;
}

/** Why a user may report another: `report()`'s `reason`. */
export type ReportReason = "spam" | "nudity" | "minor" | "harassment" | "other";

/** The reasons, in a list (for a picker). */
export const REPORT_REASONS: readonly ReportReason[];

/** What `report()` resolves with (`user_reported`). */
export interface Reported { userId: string; reportId: string; }

export interface Conversation { withUser: string; last: Envelope; unread: number; }

export interface Resumed {
  recovered: boolean;
  offset: number;
  epoch: string;
  error?: string;
  code?: string;
}

/** The events of a Client, by name; each `CustomEvent`'s `detail`. */
export interface ClientEventMap {
  state: CustomEvent<State>;
  open: CustomEvent<{ reconnected: boolean }>;
  close: CustomEvent<{ code: number; reason: string }>;
  /** A connection attempt was refused (detail: the refusal: `forbidden`, `unauthorized`, ...). */
  refused: CustomEvent<AleatoriaError>;
  /** With --anonymous: who the server says this client is, and its token to save. */
  identity: CustomEvent<{ userId: string; reconnectToken: string }>;
  /** A stream a resume could not replay: reload it (`room`, or `direct` for the inbox). */
  unrecovered: CustomEvent<Resumed & { room?: string; direct?: true }>;
  /** New ICE servers came (`ice_servers` or `assign_role`): `client.iceServers`. */
  iceservers: CustomEvent<RTCIceServer[]>;
  /** Every message from the server. */
  message: CustomEvent<Envelope>;
  chat_message: CustomEvent<Envelope>;
  welcome: CustomEvent<Envelope>;
  ice_servers: CustomEvent<Envelope>;
  resumed: CustomEvent<Envelope>;
  user_joined: CustomEvent<Envelope>;
  user_left: CustomEvent<Envelope>;
  room_joined: CustomEvent<Envelope>;
  room_left: CustomEvent<Envelope>;
  assign_role: CustomEvent<Envelope>;
  peer_reconnected: CustomEvent<Envelope>;
  no_peer_available: CustomEvent<Envelope>;
  webrtc_offer: CustomEvent<Envelope>;
  webrtc_answer: CustomEvent<Envelope>;
  webrtc_candidate: CustomEvent<Envelope>;
  hangup: CustomEvent<Envelope>;
  error: CustomEvent<Envelope>;
}

export class Client extends EventTarget {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  state: State;
  userId: string;
  /** With --anonymous: the token to come back with (see the `identity` event). */
  reconnectToken: string;
  rooms: Set<string>;
  /** The latest ICE servers the server gave (as the connection opens, with each call). */
  iceServers: RTCIceServer[];
  positions: Map<string, Position>;
  connect(): Promise<Client>;
  close(): void;
  getPositions(): Positions;
  send(message: Envelope): void;
  request(message: Envelope, types: string | string[]): Promise<Envelope>;
  joinRoom(room: string): Promise<Envelope>;
  leaveRoom(room: string): Promise<Envelope>;
  getRooms(): Promise<string[]>;
  getRoomMembers(room: string, page?: { limit?: number; after?: string }):
    Promise<{ room: string; members: string[]; count: number; next?: string }>;
  getRecentMessages(room: string, page?: { limit?: number; before?: string }): Promise<Envelope[]>;
  getDirectMessages(withUser: string, page?: { limit?: number }): Promise<Envelope[]>;
  getConversations(page?: { limit?: number; before?: number }):
    Promise<{ conversations: Conversation[]; next?: number }>;
  markRead(withUser: string, offset: number):
    Promise<{ withUser: string; offset: number; unread: number }>;
  say(room: string, content: string): Promise<Envelope>;
  write(toUser: string, content: string): Promise<Envelope>;
  available(interests?: string[]): void;
  unavailable(): void;
  requestPeer(currentPeerId?: string,
              options?: { interests?: string[]; interestsOnly?: boolean }):
    Promise<{ role: "polite" | "impolite"; peerId: string; commonInterests: string[];
              iceServers: RTCIceServer[] } | null>;
  getIceServers(): Promise<IceServers>;
  signal(type: "webrtc_offer" | "webrtc_answer" | "webrtc_candidate" | "hangup",
         toUser: string, payload?: object): void;
  /** Block a user: never paired again, no direct message or signaling either way. */
  block(userId: string): Promise<{ userId: string }>;
  unblock(userId: string): Promise<{ userId: string }>;
  /** The users this user blocks, sorted. */
  getBlocked(): Promise<string[]>;
  /** Report a user to the operator (and block it); `details` up to 500 characters. */
  report(userId: string, reason: ReportReason, details?: string): Promise<Reported>;

  addEventListener<K extends keyof ClientEventMap>(type: K,
    listener: (this: Client, event: ClientEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof ClientEventMap>(type: K,
    listener: (this: Client, event: ClientEventMap[K]) => any,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}

export interface CallerOptions {
  stream?: MediaStream | null;
  /** Its `iceServers`, if any, replace the server's. */
  rtcConfig?: RTCConfiguration;
  /** Up to 10: a partner who shares one is preferred. */
  interests?: string[];
  /** Seconds of a search during which only a partner sharing an interest is taken. */
  fallbackAfter?: number;
  /** Skipped by the partner, say available again (default true). */
  requeue?: boolean;
  /** Back from a blip in a call, how long to wait for its resume before ending it (ms, 5000). */
  resumeWait?: number;
  RTCPeerConnection?: typeof RTCPeerConnection;
}

/** The events of a Caller, by name. */
export interface CallerEventMap {
  call: CustomEvent<{ peerId: string; role: "polite" | "impolite"; commonInterests: string[] }>;
  track: CustomEvent<RTCTrackEvent>;
  connection: CustomEvent<RTCPeerConnectionState>;
  ended: CustomEvent<{ peerId: string; reason: string; local: boolean }>;
  error: CustomEvent<Error>;
  /** This side's socket was lost in a call: the call and its connection are kept. */
  reconnecting: CustomEvent<{ peerId: string; side: "self" }>;
  /** The call was resumed after a blip of this side ("self") or the partner's ("peer"). */
  reconnected: CustomEvent<{ peerId: string; side: "self" | "peer" }>;
}

export class Caller extends EventTarget {
  constructor(client: Client, options?: CallerOptions);
  client: Client;
  peerId: string | null;
  polite: boolean;
  requeue: boolean;
  pc: RTCPeerConnection | null;
  available(): void;
  next(): Promise<boolean>;
  /** Stop looking for a partner (and end the call, if any): out of the pool. */
  stop(): void;
  hangup(): void;
  /** Block the partner, which ends the call (`ended`, reason `blocked`). */
  block(): Promise<{ userId: string }>;
  /** Report the partner, which blocks it and ends the call (`ended`, reason `reported`). */
  report(reason: ReportReason, details?: string): Promise<Reported>;

  addEventListener<K extends keyof CallerEventMap>(type: K,
    listener: (this: Caller, event: CallerEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof CallerEventMap>(type: K,
    listener: (this: Caller, event: CallerEventMap[K]) => any,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}
