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

export type State = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface ClientOptions {
  userId?: string;
  room?: string;
  token?: string;
  /** A WebSocket class, where there is no global one (Node 20 without the flag). */
  WebSocket?: any;
  reconnect?: { initial?: number; max?: number; factor?: number; jitter?: number };
  requestTimeout?: number;
  /** Resume every stream after a reconnect (default true). */
  resume?: boolean;
}

export class AleatoriaError extends Error {
  code: string;
  payload: any;
}

export interface Conversation { withUser: string; last: Envelope; unread: number; }

export class Client extends EventTarget {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  state: State;
  userId: string;
  rooms: Set<string>;
  positions: Map<string, Position>;
  connect(): Promise<Client>;
  close(): void;
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
  available(): void;
  unavailable(): void;
  requestPeer(currentPeerId?: string): Promise<{ role: "polite" | "impolite"; peerId: string } | null>;
  signal(type: "webrtc_offer" | "webrtc_answer" | "webrtc_candidate" | "hangup",
         toUser: string, payload?: object): void;
}

export interface CallerOptions {
  stream?: MediaStream | null;
  rtcConfig?: RTCConfiguration;
  RTCPeerConnection?: typeof RTCPeerConnection;
}

export class Caller extends EventTarget {
  constructor(client: Client, options?: CallerOptions);
  client: Client;
  peerId: string | null;
  polite: boolean;
  pc: RTCPeerConnection | null;
  available(): void;
  next(): Promise<boolean>;
  hangup(): void;
}
