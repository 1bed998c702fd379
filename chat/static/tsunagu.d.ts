// Type declarations for tsunagu.js (the browser SDK). See docs/browser.md.

export declare const VERSION: string;

/** A warning text per locale; `text` is the one in the viewer's locale (docs/protocol.md). */
export interface LocalizedWarning {
  ja?: string;
  en?: string;
  text?: string;
}

export interface Moderation {
  action: "allow" | "flag" | "mask" | "hold" | "block" | string;
  categories: string[];
  /** A warning for the viewer: a string, or one text per locale (`{ja, en, text}`). */
  warning?: string | { ja?: string; en?: string; text?: string };
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
  /** Sends tried so far (0 when queued). */
  attempts: number;
  last_attempt?: number;
  /** Not sent again before this time (ms since the epoch): rate_limited, unavailable, internal. */
  not_before?: number;
  /** Transient errors (unavailable, internal) so far: the exponent of the retry backoff. */
  failures?: number;
}

/** An item as stored (localStorage): `owner` names the tab that sends it, null once released. */
export type StoredOutboxItem = OutboxItem & { owner?: string | null };

/**
 * The limits hello's `ok` tells the client (docs/protocol.md); `{}` before the first hello.
 * `history_max_limit` is read when a server sends it (else 500, or what a 400 taught).
 */
export interface Limits {
  max_frame_bytes?: number;
  max_body_chars?: number;
  rate_per_s?: number;
  rate_burst?: number;
  history_max_limit?: number;
  [name: string]: number | undefined;
}

/** An in-app notice (docs/notifications.md), as the `notification` push carries it. */
export interface Notification {
  id: string;
  kind: string;
  category?: string;
  thread?: string | null;
  title: string;
  body: string;
  data?: Record<string, unknown>;
  urgent?: boolean;
  seen?: boolean;
  read?: boolean;
  archived?: boolean;
  created_at?: string;
  [field: string]: unknown;
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
  limits: Limits;
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
  notification: { notification: Notification; unread: number };
  thread: { thread: Record<string, unknown> };
  thread_updated: { thread: string; stage: string; title: string };
  participant: { thread: string; user: string; role: string };
  review: Record<string, unknown>;
  outbox: { items: OutboxItem[] };
  sent: { item: OutboxItem; message: Message; duplicate: boolean; moderation?: Moderation };
  /** The send was answered `ok` but moderation held (`hold`) or refused (`block`) it. */
  withheld: { item: OutboxItem; withheld: { id: string; status: string; action: "hold" | "block" }; moderation?: Moderation };
  /**
   * A send refused for good: by the server (bad_frame, forbidden, not_found, too_large,
   * bad_request), over hello's limits before it was queued (bad_frame for the body, too_large
   * for the frame), or after a 1009 close while it was being sent (too_large).
   */
  failed: { item: OutboxItem; error: TsunaguError };
  /** A send answered `unavailable`/`internal`: it is tried again after `delay` ms, in order. */
  retry_send: { item: OutboxItem; error: TsunaguError; delay: number };
  /** A message this user sent was held; a moderator released or rejected it. */
  withheld_status: { id: string; thread: string; status: "released" | "rejected"; message?: Message };
  moderation_warning: { thread: string | null; warning: string | LocalizedWarning };
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
  /**
   * Reconnect delays (ms): full jitter over min(cap, base * 2^attempt); the attempt count
   * resets once a connection has stayed up `resetAfter` (60000); after a 4029 close the
   * delays start from `crowdedBase` (5000). Also the backoff of send retries and gap fills.
   */
  backoff?: { base?: number; cap?: number; resetAfter?: number; crowdedBase?: number };
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
// The SDK also raises the server's bad_frame (a body over max_body_chars) and too_large (a
// frame over max_frame_bytes) itself, for what the server would refuse.

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
  /** With bad_frame/too_large raised by the SDK: the limit, the size found, and what. */
  limit?: number;
  size?: number;
  field?: "body" | "frame";
  /** With too_large after a close: the close code (1009). */
  close_code?: number;
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
  /** hello's limits (`{}` before the first hello). */
  readonly limits: Limits;
  readonly outbox: Outbox;
  readonly tracker: SeqTracker;
  attempt: number;
  backoff: { base: number; cap: number; resetAfter: number; crowdedBase: number };

  on<K extends keyof ClientEvents>(type: K, fn: (data: ClientEvents[K]) => void): () => void;
  on(type: "*", fn: (type: string, data: unknown) => void): () => void;
  off(type: string, fn: (...args: any[]) => void): void;

  connect(): Promise<HelloOk | void>;
  close(): void;
  reconnectNow(): void;
  token(): Promise<string>;
  request(frame: Record<string, unknown>): Promise<Record<string, any>>;
  open(thread: string, options?: { limit?: number }): Promise<Message[]>;
  /**
   * Queue a message; returns the queued item. One over hello's limits is not queued: a
   * `failed` event is emitted at once and the returned item carries the `error`.
   */
  send(thread: string, body: string, options?: { clientMsgId?: string }): OutboxItem & { error?: TsunaguError };
  discard(clientMsgId: string): void;
  pending(thread?: string): OutboxItem[];
  read(thread: string, seq: number): Promise<Record<string, any>>;
  typing(thread: string, everyMs?: number): void;
  edit(thread: string, message: string, body: string): Promise<Record<string, any>>;
  delete(thread: string, message: string): Promise<Record<string, any>>;
  thank(thread: string, message: string): Promise<Record<string, any>>;
  http<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  /** `limit` is capped at the server's page limit (hello's `history_max_limit`, or a 400's). */
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

/** How often a live tab refreshes its outbox heartbeat (ms); gone after 3 periods. */
export declare const OUTBOX_HEARTBEAT_MS: number;
/** How long a tombstone of a sent (or dropped) outbox item stays stored (ms). */
export declare const OUTBOX_SENT_TTL_MS: number;

/**
 * The outbox, persisted under `key`. Tabs of one user share the key: every write merges with
 * what the others stored (outboxMerge), each stored item names the tab (`owner`) that sends it.
 * A live tab keeps a heartbeat under `<key>:alive:<owner>`; items leave other tabs only through
 * tombstones under `<key>:sent`.
 */
export declare class Outbox {
  constructor(storage?: Storage | null, key?: string,
    options?: { owner?: string; now?: () => number; heartbeat?: number });
  items: OutboxItem[];
  readonly size: number;
  key: string;
  /** This tab's id in stored items. */
  readonly owner: string;
  /** Heartbeat period in ms (0: no timer; the heartbeat is still refreshed on every write). */
  heartbeat: number;
  /** Called when a heartbeat's sync changed the items. */
  onchange: (() => void) | null;
  /** Where this tab's heartbeat (an expiry time, ms) is stored. */
  readonly aliveKey: string;
  /** Where the tombstones ({client_msg_id: ms}) are stored. */
  readonly sentKey: string;
  /** Adopt the stored items of gone tabs (released, or no fresh heartbeat); live tabs keep theirs. */
  load(): void;
  /**
   * Forget own items another tab sent (tombstoned), adopt those of gone tabs, give up own items
   * a live tab adopted, write back own items a stale write lost. Whether the items changed.
   */
  sync(): boolean;
  /** Mark this tab live: refresh the heartbeat now and every `heartbeat` ms. */
  live(): void;
  /** Refresh the heartbeat once (while live). */
  beat(): void;
  rekey(key: string): void;
  /** Write this tab's items merged with the other tabs' stored ones. */
  save(owner?: string | null): void;
  /** Hand this tab's items over (close, pagehide): clear the heartbeat, write them released. */
  release(): void;
  add(item: Omit<OutboxItem, "attempts"> & { attempts?: number }): OutboxItem;
  /** Take an item out for good (sent, refused, discarded); tombstoned for the other tabs. */
  remove(clientMsgId: string): void;
  attempt(clientMsgId: string): void;
  defer(clientMsgId: string, notBefore: number, options?: { failed?: boolean }): void;
  next(now?: number): OutboxItem | null;
}

export declare function backoffCeiling(attempt: number, base?: number, cap?: number): number;
export declare function backoffDelay(attempt: number, options?: { base?: number; cap?: number }, random?: () => number): number;
/** The longest delay setTimeout takes (2^31 - 1 ms). */
export declare const MAX_TIMER_MS: number;
/** The reconnect delay after a close with `code` (4029: from crowdedBase; 1011/4008: attempt >= 1). */
export declare function reconnectDelay(code: number | undefined, attempt: number,
  options?: { base?: number; cap?: number; crowdedBase?: number }, random?: () => number): number;
/** The limits assumed before hello: max_frame_bytes 65536, history_max_limit 500. */
export declare const DEFAULT_LIMITS: Readonly<{ max_frame_bytes: number; history_max_limit: number }>;
/** A frame's size in bytes as sent (UTF-8 JSON). */
export declare function frameBytes(frame: unknown): number;
/** Why the server would refuse this send for its size (bad_frame: body; too_large: frame), or null. */
export declare function sendSizeProblem(item: Pick<OutboxItem, "client_msg_id" | "thread" | "body">, limits?: Limits):
  { code: "bad_frame" | "too_large"; message: string; field: "body" | "frame"; limit: number; size: number } | null;
/** The page limit named by a history 400 ("... between 1 and 200" -> 200), or null. */
export declare function historyLimitFromError(err: { status?: number; message?: string } | null): number | null;
export declare function classifySeq(last: number, seq: number): "duplicate" | "next" | "gap";
export declare function missingRange(last: number, seq: number): { from: number; to: number } | null;
export declare function newClientMsgId(random?: () => number): string;
export declare function outboxAdd(items: OutboxItem[], item: Partial<OutboxItem> & Pick<OutboxItem, "client_msg_id" | "thread" | "body">): OutboxItem[];
export declare function outboxRemove(items: OutboxItem[], clientMsgId: string): OutboxItem[];
export declare function outboxMarkAttempt(items: OutboxItem[], clientMsgId: string, at?: number): OutboxItem[];
/** The oldest item ready to go whose thread has no older item waiting (per-thread order). */
export declare function outboxNext(items: OutboxItem[], now?: number): OutboxItem | null;
/** When the earliest waiting head of a thread may go, or null. */
export declare function outboxWakeAt(items: OutboxItem[], now?: number): number | null;
export declare function outboxDefer(items: OutboxItem[], clientMsgId: string, notBefore: number, options?: { failed?: boolean }): OutboxItem[];
/**
 * Merge one tab's items into the stored list: what to write (the union, minus `removed` and
 * `sent`), and the tab's items after (an own item goes only when tombstoned in `sent`, or when
 * its stored copy names another tab that is `alive`).
 */
export declare function outboxMerge(stored: StoredOutboxItem[], mine: OutboxItem[],
  options?: { owner?: string | null; self?: string | null; removed?: Set<string>;
    sent?: { has(id: string): boolean }; alive?: (owner: string) => boolean }):
  { write: StoredOutboxItem[]; items: OutboxItem[] };
export declare function outboxForThread(items: OutboxItem[], thread: string): OutboxItem[];
export declare function outboxParse(text: string | null): StoredOutboxItem[];
export declare function earlierPage(first: number | null, messages: Message[], limit?: number):
  { messages: Message[]; first: number | null; done: boolean };
/** Insert or replace by id, in seq order; a copy with a lower `rev` than the held one is ignored. */
export declare function mergeMessage(list: Message[], msg: Message): Message[];
export declare function tokenClaims(token: string): Record<string, any>;
export declare function wsUrl(server: string): string;
export declare const FINAL_SEND_ERRORS: Set<string>;

export default TsunaguClient;
