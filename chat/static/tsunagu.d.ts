// Type declarations for tsunagu.js (the browser SDK). See docs/browser.md.

export declare const VERSION: string;

export interface Moderation {
  action: "allow" | "flag" | "mask" | "hold" | "block" | string;
  categories: string[];
  /** A warning for the viewer: a string, or one text per locale. */
  warning?: string | { ja?: string; en?: string };
}

export interface Message {
  id: string;
  thread: string;
  seq: number;
  sender: string;
  kind: "user" | "system";
  body: string;
  created_at: string;
  client_msg_id?: string;
  data?: Record<string, unknown>;
  rev?: number;
  edited_at?: string;
  thanks?: number;
  deleted?: true;
  deleted_at?: string;
  /** The body has spans masked by moderation (recipients only). */
  masked?: true;
  moderation?: Moderation;
}

/** One of this user's own messages that moderation withheld (`GET /v1/threads/{id}/withheld`). */
export interface WithheldMessage {
  id: string;
  thread: string;
  client_msg_id: string | null;
  body: string;
  status: "held" | "rejected" | "blocked" | "released";
  action: "hold" | "block";
  created_at: string;
  /** Set when the withheld text was an edit of this message. */
  edit_of: string | null;
  released_message_id: string | null;
  /** As in the `ok` to `send`: the action, the categories and the sender's warning. */
  moderation: Moderation;
}

export type WithheldStatus = WithheldMessage["status"];

export interface OutboxItem {
  client_msg_id: string;
  thread: string;
  body: string;
  created_at: string;
  attempts: number;
  last_attempt?: number;
  not_before?: number;
}

export interface User {
  id: string;
  roles: string[];
  name: string;
  locale: "ja" | "en";
  tz: string;
  exp: number;
}

export interface HelloOk {
  type: "ok";
  user: User;
  threads: Record<string, { last_seq: number; stage: string }>;
  presence: Record<string, "online" | "offline">;
  limits: Record<string, number>;
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed" | "unauthorized";

export interface ClientEvents {
  state: { state: ConnectionState; attempt?: number; delay?: number; code?: number; reason?: string };
  hello: HelloOk;
  retry: { attempt: number; delay: number; code?: number };
  message: Message;
  update: { action: "edit" | "delete" | "thanks" | string; by?: string; message: Message };
  receipt: { thread: string; user: string; seq: number };
  typing: { thread: string; user: string };
  presence: { user: string; status: "online" | "offline" };
  notification: Record<string, unknown>;
  thread: { thread: Record<string, unknown> };
  thread_updated: { thread: string; stage: string; title: string };
  participant: { thread: string; user: string; role: string };
  review: Record<string, unknown>;
  outbox: { items: OutboxItem[] };
  sent: { item: OutboxItem; message: Message; duplicate: boolean; moderation?: Moderation };
  /** The send was answered `ok` but moderation held (`hold`) or refused (`block`) it. */
  withheld: { item: OutboxItem; withheld: { id: string; status: string; action: "hold" | "block" }; moderation?: Moderation };
  failed: { item: OutboxItem; error: TsunaguError };
  /** A message this user sent was held; a moderator released or rejected it. */
  withheld_status: { id: string; thread: string; status: "released" | "rejected"; message?: Message };
  moderation_warning: { thread: string | null; warning: string | { ja?: string; en?: string } };
  escalation: { item: string; thread: string; by: string };
  gap: { thread: string; from?: number; to?: number };
  /** A page of older history loaded by `loadEarlier` (also its resolved value). */
  earlier: { thread: string; messages: Message[]; done: boolean };
  seq: { thread: string; seq: number };
  frame: Record<string, unknown>;
  error: TsunaguError;
}

export interface ClientOptions {
  server?: string;
  token?: string;
  getToken?: () => Promise<string> | string;
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  storage?: Storage | null;
  backoff?: { base?: number; cap?: number };
  random?: () => number;
  pingInterval?: number;
  requestTimeout?: number;
  timers?: { set(fn: () => void, ms: number): unknown; clear(handle: unknown): void };
}

/** The server's error codes (docs/protocol.md, "Errors and close codes"). */
export type ServerErrorCode =
  | "bad_frame" | "bad_request" | "forbidden" | "not_found" | "conflict" | "too_large"
  | "rate_limited" | "unavailable" | "internal" | "unauthorized";

/** The SDK's own error codes (see SDK_ERROR_CODES). */
export type SdkErrorCode =
  | "disconnected" | "closed" | "timeout" | "network" | "token" | "connect" | "not_open" | "unsupported";

/**
 * Every `TsunaguError.code`: the server's, the SDK's, or `http_<status>` for an HTTP answer
 * without an error body. Other strings may come from a newer server: treat them as generic.
 */
export type TsunaguErrorCode = ServerErrorCode | SdkErrorCode | `http_${number}` | (string & {});

/**
 * An error of the server or of the SDK. Choose what to show the user by `code`; `message` is
 * English, for developers and support.
 */
export declare class TsunaguError extends Error {
  code: TsunaguErrorCode;
  /** The HTTP status, for errors of `http()` and the calls built on it. */
  status?: number;
  /** Seconds to wait, with `rate_limited`. */
  retry_after?: number;
  /** What made the SDK fail (`network`, `token`): the underlying error. */
  cause?: unknown;
  constructor(code: TsunaguErrorCode, message: string, extra?: Record<string, unknown>);
}

export declare const SDK_ERROR_CODES: readonly SdkErrorCode[];

export declare class TsunaguClient {
  constructor(options: ClientOptions);
  readonly server: string;
  readonly state: ConnectionState;
  readonly user: User | null;
  readonly threads: Record<string, { last_seq: number; stage: string }>;
  readonly presence: Record<string, "online" | "offline">;
  readonly outbox: Outbox;
  readonly tracker: SeqTracker;
  attempt: number;
  backoff: { base: number; cap: number };

  on<K extends keyof ClientEvents>(type: K, fn: (data: ClientEvents[K]) => void): () => void;
  on(type: "*", fn: (type: string, data: unknown) => void): () => void;
  off(type: string, fn: (...args: any[]) => void): void;

  connect(): Promise<HelloOk | void>;
  close(): void;
  reconnectNow(): void;
  token(): Promise<string>;
  request(frame: Record<string, unknown>): Promise<Record<string, any>>;
  open(thread: string, options?: { limit?: number }): Promise<Message[]>;
  send(thread: string, body: string, options?: { clientMsgId?: string }): OutboxItem;
  discard(clientMsgId: string): void;
  pending(thread?: string): OutboxItem[];
  read(thread: string, seq: number): Promise<Record<string, any>>;
  typing(thread: string, everyMs?: number): void;
  edit(thread: string, message: string, body: string): Promise<Record<string, any>>;
  delete(thread: string, message: string): Promise<Record<string, any>>;
  thank(thread: string, message: string): Promise<Record<string, any>>;
  http<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  history(thread: string, options?: { afterSeq?: number; beforeSeq?: number; limit?: number }):
    Promise<{ messages: Message[]; last_seq: number; first: number | null; last: number | null }>;
  thread(thread: string): Promise<Record<string, any>>;
  /** Whether an opened thread has messages older than those loaded so far. */
  hasEarlier(thread: string): boolean;
  /**
   * The page before the earliest message loaded so far (default 50): older messages in seq
   * order, each once across calls; `done` at the start of the thread. Call after `open()`.
   */
  loadEarlier(thread: string, options?: { limit?: number }): Promise<{ messages: Message[]; done: boolean }>;
  /** This user's own withheld messages in a thread (oldest first); null without the API. */
  withheldMessages(thread: string, options?: { status?: WithheldStatus | WithheldStatus[]; limit?: number }):
    Promise<WithheldMessage[] | null>;
  notifications(): Promise<{ notifications?: Record<string, any>[]; items?: Record<string, any>[]; unread?: number } | null>;
  markNotificationRead(id: string): Promise<unknown>;
}

export declare class SeqTracker {
  constructor(cursors?: Record<string, number>);
  isTracked(thread: string): boolean;
  last(thread: string): number;
  track(thread: string, seq: number): void;
  resumeMap(): Record<string, number>;
  accept(msg: Pick<Message, "thread" | "seq">): {
    deliver: Message[];
    gap: { from: number; to: number } | null;
    duplicate: boolean;
  };
  pendingGap(thread: string): { from: number; to: number } | null;
}

export declare class Outbox {
  constructor(storage?: Storage | null, key?: string);
  items: OutboxItem[];
  readonly size: number;
  key: string;
  load(): void;
  rekey(key: string): void;
  save(): void;
  add(item: Omit<OutboxItem, "attempts"> & { attempts?: number }): OutboxItem;
  remove(clientMsgId: string): void;
  attempt(clientMsgId: string): void;
  defer(clientMsgId: string, notBefore: number): void;
  next(now?: number): OutboxItem | null;
}

export declare function backoffCeiling(attempt: number, base?: number, cap?: number): number;
export declare function backoffDelay(attempt: number, options?: { base?: number; cap?: number }, random?: () => number): number;
export declare function classifySeq(last: number, seq: number): "duplicate" | "next" | "gap";
export declare function missingRange(last: number, seq: number): { from: number; to: number } | null;
export declare function newClientMsgId(random?: () => number): string;
export declare function outboxAdd(items: OutboxItem[], item: Partial<OutboxItem> & Pick<OutboxItem, "client_msg_id" | "thread" | "body">): OutboxItem[];
export declare function outboxRemove(items: OutboxItem[], clientMsgId: string): OutboxItem[];
export declare function outboxMarkAttempt(items: OutboxItem[], clientMsgId: string, at?: number): OutboxItem[];
export declare function outboxNext(items: OutboxItem[], now?: number): OutboxItem | null;
export declare function outboxDefer(items: OutboxItem[], clientMsgId: string, notBefore: number): OutboxItem[];
export declare function outboxForThread(items: OutboxItem[], thread: string): OutboxItem[];
export declare function outboxParse(text: string | null): OutboxItem[];
export declare function earlierPage(first: number | null, messages: Message[], limit?: number):
  { messages: Message[]; first: number | null; done: boolean };
/** Insert or replace by id, in seq order; a copy with a lower `rev` than the held one is ignored. */
export declare function mergeMessage(list: Message[], msg: Message): Message[];
export declare function tokenClaims(token: string): Record<string, any>;
export declare function wsUrl(server: string): string;
export declare const FINAL_SEND_ERRORS: Set<string>;

export default TsunaguClient;
