// tsunagu.js — the browser SDK for tsunagu (plain ES module, no build step).
//
// Theory of operation
// -------------------
// * One TsunaguClient holds one WebSocket to /v1/ws. It says `hello` with its token and a
//   `resume` map {thread: last_seq} for every thread it tracks, so the server pushes what was
//   missed while it was away, in seq order, before any live message.
// * When the socket closes for any reason but `close()`, the client reconnects after a delay
//   drawn with exponential backoff and FULL jitter: uniform in [0, min(cap, base * 2^n)).
//   n counts the attempts since the connection last stayed up for `backoff.resetAfter`
//   (60 s), so a server that accepts hello and then closes at once is not hammered; 4029
//   (too many connections) starts from a larger base (`backoff.crowdedBase`, 5 s).
// * Per thread, a SeqTracker keeps the last seq handed to the application. A message at or
//   below it is a duplicate and dropped; one above last+1 is a gap: it is held back while the
//   missing range is read from `GET /v1/threads/{id}/messages?after_seq=`, so the application
//   sees every message of a tracked thread exactly once and in seq order. A failed read is
//   retried with backoff.
// * `send()` puts the message in an Outbox (persisted to localStorage when there is one)
//   under a client_msg_id chosen once; a message over the server's limits is refused at once
//   (`failed`) and never queued. The outbox is flushed one message at a time whenever the
//   socket is open, and the messages of one thread strictly in order (one deferred by
//   `rate_limited`, `unavailable` or `internal` holds back those after it); a message leaves
//   it only when the server has answered `ok` (stored, or withheld by moderation) or refused
//   it for good. A retry reuses the same client_msg_id, so the server stores it at most once.
//   Tabs of one user share the stored outbox: each writes by merging with what the others
//   stored (a union; an item leaves only through its sender's tombstone), and sends only its
//   own messages and those a gone tab left behind (released on close/pagehide, or its
//   heartbeat expired); a live tab's messages are never taken over.
//
// The decisions (backoff, gap detection, outbox operations) are pure functions and small
// classes without I/O, exported for unit tests (`node --test tests/js/`).

export const VERSION = "1";

// ---------------------------------------------------------------- pure: backoff

/** Upper bound of the n-th retry delay (ms): min(cap, base * 2^attempt). */
export function backoffCeiling(attempt, base = 500, cap = 30000) {
  const n = Math.max(0, Math.min(attempt | 0, 30));
  return Math.min(cap, base * 2 ** n);
}

/** Full jitter: a delay uniform in [0, backoffCeiling(attempt)). `random` returns [0, 1). */
export function backoffDelay(attempt, { base = 500, cap = 30000 } = {}, random = Math.random) {
  return Math.floor(random() * backoffCeiling(attempt, base, cap));
}

/** The longest delay setTimeout takes (2^31 - 1 ms, ~24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The delay before reconnect attempt `attempt` (0, 1, 2, ...) after a close with `code`
 * (docs/protocol.md, "Reconnecting"): full jitter over min(cap, base * 2^attempt), where base
 * is `crowdedBase` (default 5 s) after 4029 (too many connections), and at least the second
 * step (attempt >= 1) after 1011 (server failure) and 4008 (slow consumer), which a prompt
 * reconnect would likely meet again.
 */
export function reconnectDelay(code, attempt, { base = 500, cap = 30000, crowdedBase = 5000 } = {}, random = Math.random) {
  if (code === 4029) return backoffDelay(attempt, { base: Math.max(base, crowdedBase), cap: Math.max(cap, crowdedBase) }, random);
  if (code === 1011 || code === 4008) return backoffDelay(Math.max(1, attempt), { base, cap }, random);
  return backoffDelay(attempt, { base, cap }, random);
}

// ---------------------------------------------------------------- pure: seq and gaps

/**
 * Classify an incoming seq against the last seq delivered for its thread.
 * Returns "duplicate" (seq <= last), "next" (seq === last + 1) or "gap" (seq > last + 1).
 */
export function classifySeq(last, seq) {
  if (seq <= last) return "duplicate";
  if (seq === last + 1) return "next";
  return "gap";
}

/** The missing range [from, to] (inclusive) before `seq`, or null when there is none. */
export function missingRange(last, seq) {
  return seq > last + 1 ? { from: last + 1, to: seq - 1 } : null;
}

/**
 * Per-thread cursors and held-back messages. `accept` takes one message and returns what may
 * be delivered now (in seq order) and, when there is a gap, the range to fetch.
 */
export class SeqTracker {
  constructor(cursors = {}) {
    this.cursors = new Map(Object.entries(cursors));
    this.held = new Map(); // thread -> Map(seq -> message)
  }

  isTracked(thread) {
    return this.cursors.has(thread);
  }

  last(thread) {
    return this.cursors.get(thread) ?? 0;
  }

  /** Start tracking a thread at `seq` (messages up to seq are known to the app). */
  track(thread, seq) {
    const cur = this.cursors.get(thread);
    if (cur === undefined || seq > cur) this.cursors.set(thread, seq);
  }

  /** The `resume` map for hello: every tracked thread and its last seq. */
  resumeMap() {
    return Object.fromEntries(this.cursors);
  }

  /** Accept one message: {deliver: [...], gap: {from, to} | null, duplicate: bool}. */
  accept(msg) {
    const thread = msg.thread;
    if (!this.cursors.has(thread)) return { deliver: [msg], gap: null, duplicate: false };
    const last = this.cursors.get(thread);
    const kind = classifySeq(last, msg.seq);
    if (kind === "duplicate") return { deliver: [], gap: null, duplicate: true };
    if (kind === "gap") {
      let held = this.held.get(thread);
      if (!held) this.held.set(thread, (held = new Map()));
      const duplicate = held.has(msg.seq);
      held.set(msg.seq, msg);
      return { deliver: [], gap: missingRange(last, msg.seq), duplicate };
    }
    this.cursors.set(thread, msg.seq);
    return { deliver: [msg, ...this._release(thread)], gap: null, duplicate: false };
  }

  /** Messages held behind a gap that has now closed. */
  _release(thread) {
    const held = this.held.get(thread);
    const out = [];
    if (!held) return out;
    let next = this.cursors.get(thread) + 1;
    while (held.has(next)) {
      out.push(held.get(next));
      held.delete(next);
      this.cursors.set(thread, next);
      next += 1;
    }
    for (const seq of [...held.keys()]) if (seq < next) held.delete(seq);
    if (held.size === 0) this.held.delete(thread);
    return out;
  }

  /** The lowest held seq of a thread (the end of its current gap), or null. */
  pendingGap(thread) {
    const held = this.held.get(thread);
    if (!held || held.size === 0) return null;
    const last = this.last(thread);
    const first = Math.min(...held.keys());
    return missingRange(last, first);
  }
}

// ---------------------------------------------------------------- pure: outbox

let idCounter = 0;

/** A new client_msg_id: random, unique per sender. */
export function newClientMsgId(random = Math.random) {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return `c-${c.randomUUID()}`;
  idCounter += 1;
  return `c-${Date.now().toString(36)}-${idCounter}-${Math.floor(random() * 2 ** 32).toString(36)}`;
}

/** Outbox operations on a plain array of items; each returns a new array. */
export function outboxAdd(items, item) {
  if (items.some((i) => i.client_msg_id === item.client_msg_id)) return items.slice();
  return [...items, { attempts: 0, ...item }];
}

export function outboxRemove(items, clientMsgId) {
  return items.filter((i) => i.client_msg_id !== clientMsgId);
}

export function outboxMarkAttempt(items, clientMsgId, at = Date.now()) {
  return items.map((i) =>
    i.client_msg_id === clientMsgId ? { ...i, attempts: (i.attempts || 0) + 1, last_attempt: at } : i,
  );
}

/**
 * The item to send next: the oldest one that is not waiting for a retry time and has no
 * older item of its thread before it. A deferred item (rate_limited, unavailable...) holds
 * back the rest of its thread, so the messages of one thread are never reordered; other
 * threads go on.
 */
export function outboxNext(items, now = Date.now()) {
  const waiting = new Set();
  for (const i of items) {
    if (waiting.has(i.thread)) continue;
    if (!i.not_before || i.not_before <= now) return i;
    waiting.add(i.thread);
  }
  return null;
}

/** The earliest retry time among the items that wait for one (heads of their thread), or null. */
export function outboxWakeAt(items, now = Date.now()) {
  const seen = new Set();
  let at = null;
  for (const i of items) {
    if (seen.has(i.thread)) continue;
    seen.add(i.thread);
    if (i.not_before && i.not_before > now && (at === null || i.not_before < at)) at = i.not_before;
  }
  return at;
}

/** Defer an item until `notBefore` (ms since the epoch); `failures` counts transient errors. */
export function outboxDefer(items, clientMsgId, notBefore, { failed = false } = {}) {
  return items.map((i) =>
    i.client_msg_id === clientMsgId
      ? { ...i, not_before: notBefore, ...(failed ? { failures: (i.failures || 0) + 1 } : {}) }
      : i,
  );
}

export function outboxForThread(items, thread) {
  return items.filter((i) => i.thread === thread);
}

/** Parse what was persisted; anything malformed is dropped rather than trusted. */
export function outboxParse(text) {
  try {
    const data = JSON.parse(text ?? "[]");
    if (!Array.isArray(data)) return [];
    return data.filter(
      (i) => i && typeof i.client_msg_id === "string" && typeof i.thread === "string" && typeof i.body === "string",
    );
  } catch {
    return [];
  }
}

/**
 * Merge this tab's outbox into what storage holds (several tabs or widgets of one user share
 * one key). `stored`: the stored items (each may name its `owner`); `mine`: this tab's items;
 * `owner`: the owner to write on this tab's items (null: released); `self`: this tab's id
 * (default `owner`); `removed`: ids this tab took out without sending them (rekey); `sent`:
 * ids known to be sent or dropped for good (tombstones, a Set or Map); `alive(owner)`: whether
 * another tab still lives. Returns the list to write and this tab's items after the merge:
 *   - another tab's item stays as stored;
 *   - this tab's item replaces its stored copy, or is added when it is missing (whatever the
 *     reason: a tab writing from a stale copy may have lost it), so the result is a union;
 *   - an item in `removed` or `sent` is dropped, and only then: an item is never forgotten
 *     just because it is missing from storage;
 *   - this tab gives up an item whose stored copy names another live tab (that tab adopted it
 *     while this one looked gone), so only one tab sends it.
 */
export function outboxMerge(stored, mine, { owner = null, self = owner, removed = new Set(), sent = new Set(), alive = () => true } = {}) {
  const own = new Map(mine.map((i) => [i.client_msg_id, i]));
  const storedIds = new Set();
  const yielded = new Set();
  const write = [];
  for (const s of stored) {
    const id = s.client_msg_id;
    if (removed.has(id) || sent.has(id) || storedIds.has(id)) continue;
    storedIds.add(id);
    if (!own.has(id)) write.push(s);
    else if (s.owner && s.owner !== self && s.owner !== owner && alive(s.owner)) {
      yielded.add(id);
      write.push(s);
    } else write.push({ ...own.get(id), owner });
  }
  const items = [];
  for (const i of mine) {
    const id = i.client_msg_id;
    if (removed.has(id) || sent.has(id) || yielded.has(id)) continue;
    items.push(i);
    if (!storedIds.has(id)) write.push({ ...i, owner });
  }
  return { write, items };
}

function ownerId(random = Math.random) {
  return `o-${Date.now().toString(36)}-${Math.floor(random() * 2 ** 32).toString(36)}`;
}

const stripOwner = ({ owner, ...item }) => item;

/** How often a live tab refreshes its heartbeat (ms); it counts as gone after 3 periods. */
export const OUTBOX_HEARTBEAT_MS = 5000;
/** How long a tombstone (an item sent or dropped for good) stays stored (ms). */
export const OUTBOX_SENT_TTL_MS = 3600000;

/**
 * The outbox, persisted under `key` in a Storage-like object (localStorage) when given.
 *
 * Tabs of one user share the key. Every write re-reads it and merges (`outboxMerge`), so a tab
 * never wipes another's unsent messages, and each stored item names the tab (`owner`) that
 * sends it. A live tab refreshes a heartbeat (`<key>:alive:<owner>`, an expiry time) every
 * `heartbeat` ms; `release()` (on close and pagehide) hands this tab's items over and clears
 * it. A tab adopts (at load, on `sync()` and on every heartbeat) only the items whose owner is
 * gone: released, or without a fresh heartbeat; a live tab's items stay its own. An item
 * leaves the other tabs' memory only through a tombstone (`<key>:sent`, id -> time, kept
 * `OUTBOX_SENT_TTL_MS`) written by the tab that sent or dropped it; an own item missing from
 * storage without one is written back.
 */
export class Outbox {
  constructor(storage = null, key = "tsunagu.outbox", { owner, now, heartbeat } = {}) {
    this.storage = storage;
    this.key = key;
    this.owner = owner || ownerId();
    this.now = now || (() => Date.now());
    this.heartbeat = heartbeat ?? OUTBOX_HEARTBEAT_MS;
    this.items = [];
    this.onchange = null; // called when a heartbeat's sync changed the items
    this._removed = new Set(); // ids taken out here unsent (rekey) and not yet written
    this._sent = new Map(); // id -> when this tab sent or dropped it (tombstones)
    this._live = false;
    this._beatTimer = null;
    this.live();
    this.load();
  }

  /** Where this tab's heartbeat is stored. */
  get aliveKey() {
    return `${this.key}:alive:${this.owner}`;
  }

  get sentKey() {
    return `${this.key}:sent`;
  }

  /** The stored items, or null when storage cannot be read. */
  _read() {
    if (!this.storage) return null;
    try {
      return outboxParse(this.storage.getItem(this.key));
    } catch {
      return null;
    }
  }

  /** Whether the tab `owner` is gone (released, or its heartbeat expired or missing). */
  _gone(owner) {
    if (!owner) return true;
    if (owner === this.owner) return !this._live;
    try {
      const until = Number(this.storage.getItem(`${this.key}:alive:${owner}`));
      return !(until > this.now());
    } catch {
      return false;
    }
  }

  /** Drop the expired heartbeat of a gone tab whose items were adopted. */
  _forget(owner) {
    if (!owner || owner === this.owner) return;
    try {
      this.storage.removeItem(`${this.key}:alive:${owner}`);
    } catch {
      // nothing to clean
    }
  }

  /** The tombstones: stored ones united with this tab's, written back when some are missing. */
  _tombstones() {
    const cutoff = this.now() - OUTBOX_SENT_TTL_MS;
    const all = new Map();
    let dirty = false;
    if (this.storage) {
      try {
        const data = JSON.parse(this.storage.getItem(this.sentKey) ?? "{}");
        if (data && typeof data === "object" && !Array.isArray(data)) {
          for (const [id, at] of Object.entries(data)) {
            if (typeof at === "number" && at > cutoff) all.set(id, at);
            else dirty = true;
          }
        }
      } catch {
        dirty = true;
      }
    }
    for (const [id, at] of this._sent) {
      if (at <= cutoff) this._sent.delete(id);
      else if (!all.has(id)) {
        all.set(id, at);
        dirty = true;
      }
    }
    if (dirty && this.storage) {
      try {
        if (all.size) this.storage.setItem(this.sentKey, JSON.stringify(Object.fromEntries(all)));
        else this.storage.removeItem(this.sentKey);
      } catch {
        // Storage full or forbidden: this tab still remembers its own.
      }
    }
    return all;
  }

  /** Refresh this tab's heartbeat (while it is live). */
  beat() {
    if (!this.storage || !this._live) return;
    try {
      this.storage.setItem(this.aliveKey, String(this.now() + 3 * (this.heartbeat || OUTBOX_HEARTBEAT_MS)));
    } catch {
      // Storage full or forbidden: other tabs may take this one for gone (and send twice).
    }
  }

  /** This tab is live: keep its heartbeat fresh (and adopt what gone tabs left on each beat). */
  live() {
    this._live = true;
    this.beat();
    if (this._beatTimer || !this.storage || !(this.heartbeat > 0) || typeof setInterval !== "function") return;
    this._beatTimer = setInterval(() => {
      this.beat();
      if (this.sync() && this.onchange) this.onchange();
    }, this.heartbeat);
    this._beatTimer?.unref?.();
  }

  /** Adopt the stored items whose owner is gone (this page takes over what others left). */
  load() {
    const stored = this._read();
    if (!stored) return;
    const sent = this._tombstones();
    let write = false;
    for (const s of stored) {
      const id = s.client_msg_id;
      if (sent.has(id) || this._removed.has(id)) write = true;
      else if (s.owner === this.owner || this._gone(s.owner)) {
        this.items = outboxAdd(this.items, stripOwner(s));
        if (s.owner !== this.owner) {
          this._forget(s.owner);
          write = true;
        }
      }
    }
    if (write) this.save();
  }

  /**
   * Catch up with the other tabs' writes: forget own items another tab sent (tombstoned),
   * adopt the items of gone tabs, give up own items a live tab adopted, write back own items
   * a stale write lost. Returns whether this tab's items changed.
   */
  sync() {
    const stored = this._read();
    if (!stored) return false;
    const ids = (items) => items.map((i) => i.client_msg_id).join("\n");
    const before = ids(this.items);
    const sent = this._tombstones();
    const alive = (o) => !this._gone(o);
    this.items = outboxMerge(stored, this.items, {
      owner: this.owner, removed: this._removed, sent, alive,
    }).items;
    const mine = new Set(this.items.map((i) => i.client_msg_id));
    let write = false;
    for (const s of stored) {
      const id = s.client_msg_id;
      if (sent.has(id) || this._removed.has(id)) write = true; // still stored: purge
      else if (mine.has(id)) {
        if (s.owner !== this.owner) write = true; // own item stored as released: claim it
      } else if (s.owner === this.owner || !alive(s.owner)) {
        this.items = outboxAdd(this.items, stripOwner(s));
        mine.add(id);
        this._forget(s.owner);
        write = true;
      }
    }
    const storedIds = new Set(stored.map((i) => i.client_msg_id));
    if (this.items.some((i) => !storedIds.has(i.client_msg_id))) write = true; // lost: put back
    if (write) this.save();
    return before !== ids(this.items);
  }

  /** Switch to another key (for example once the user id is known), keeping current items. */
  rekey(key) {
    if (key === this.key) return;
    const current = this.items;
    // Take this tab's items out of the old key (other tabs' items there stay).
    this._removed = new Set(current.map((i) => i.client_msg_id));
    this.items = [];
    this.save();
    try {
      this.storage?.removeItem(this.aliveKey);
    } catch {
      // nothing to clean
    }
    this.key = key;
    this._removed = new Set();
    this.beat();
    this.load();
    for (const item of current) this.items = outboxAdd(this.items, item);
    this.save();
  }

  /** Write this tab's items, merged with what the other tabs stored. */
  save(owner = this.owner) {
    if (!this.storage) return;
    const stored = this._read();
    if (!stored) return;
    if (owner) this.beat();
    const sent = this._tombstones(); // written before the items: a tab woken by them sees both
    const { write, items } = outboxMerge(stored, this.items, {
      owner, self: this.owner, removed: this._removed, sent, alive: (o) => !this._gone(o),
    });
    this.items = items;
    try {
      if (write.length) this.storage.setItem(this.key, JSON.stringify(write));
      else this.storage.removeItem(this.key);
      this._removed = new Set();
    } catch {
      // Storage full or forbidden: the outbox still works in memory.
    }
  }

  /** Hand this tab's items to whichever tab syncs or loads next (the page is going away). */
  release() {
    this.save(null);
    this._live = false;
    if (this._beatTimer) clearInterval(this._beatTimer);
    this._beatTimer = null;
    try {
      this.storage?.removeItem(this.aliveKey);
    } catch {
      // nothing to clean
    }
  }

  /** Queue an item; returns it as queued (with `attempts`). */
  add(item) {
    this.items = outboxAdd(this.items, item);
    this.save();
    return this.items.find((i) => i.client_msg_id === item.client_msg_id) ?? { attempts: 0, ...item };
  }

  /** Take an item out for good (sent, refused, discarded): tombstoned for the other tabs. */
  remove(clientMsgId) {
    this.items = outboxRemove(this.items, clientMsgId);
    if (this.storage) this._sent.set(clientMsgId, this.now());
    this.save();
  }

  attempt(clientMsgId) {
    this.items = outboxMarkAttempt(this.items, clientMsgId);
    this.save();
  }

  defer(clientMsgId, notBefore, options) {
    this.items = outboxDefer(this.items, clientMsgId, notBefore, options);
    this.save();
  }

  next(now = Date.now()) {
    return outboxNext(this.items, now);
  }

  get size() {
    return this.items.length;
  }
}

// ---------------------------------------------------------------- pure: limits

/** The limits the SDK assumes until `hello` tells it (docs/protocol.md, "Basics"). */
export const DEFAULT_LIMITS = Object.freeze({ max_frame_bytes: 65536, history_max_limit: 500 });

const encoder = new TextEncoder();

/** The size in bytes of a frame as sent (UTF-8 JSON). */
export function frameBytes(frame) {
  return encoder.encode(JSON.stringify(frame)).length;
}

/**
 * Why the server would refuse to take this send, or null. `limits`: hello's (`max_body_chars`
 * is checked only when known; `max_frame_bytes` defaults to 64 KiB). Returns
 * `{code, message, field, limit, size}`: `bad_frame` for a body over `max_body_chars` (as the
 * server answers it), `too_large` for a frame over `max_frame_bytes` (the server would close
 * the socket with 1009).
 */
export function sendSizeProblem(item, limits = {}) {
  const maxChars = limits.max_body_chars;
  if (maxChars > 0) {
    const chars = [...item.body].length; // code points, as the server counts
    if (chars > maxChars) {
      return { code: "bad_frame", message: `field 'body' is longer than ${maxChars} characters`, field: "body", limit: maxChars, size: chars };
    }
  }
  const maxBytes = limits.max_frame_bytes > 0 ? limits.max_frame_bytes : DEFAULT_LIMITS.max_frame_bytes;
  // The frame as _request sends it, with room for a long request id.
  const bytes = frameBytes({ type: "send", thread: item.thread, client_msg_id: item.client_msg_id, body: item.body, id: "r0000000000" });
  if (bytes > maxBytes) {
    return { code: "too_large", message: `the send frame (${bytes} bytes) is larger than the server's limit of ${maxBytes} bytes`, field: "frame", limit: maxBytes, size: bytes };
  }
  return null;
}

/**
 * The largest page the history call takes, from a 400 that names `limit`
 * ("query parameter 'limit' must be between 1 and 200" -> 200), or null.
 */
export function historyLimitFromError(err) {
  if (!err || err.status !== 400 || !/\blimit\b/.test(String(err.message))) return null;
  const m = /between\s+\d+\s+and\s+(\d+)/.exec(String(err.message));
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------- pure: messages and tokens

/**
 * Insert or replace `msg` (by id) in a list kept in seq order; returns a new list.
 *
 * A copy older than the one held (a lower `rev`: every edit and deletion raises it) is
 * ignored: an HTTP history page read before an edit but answered after its `update`, or a
 * retried send answered with the message as first stored, must not bring back the
 * pre-edit text or undo a deletion. Same `rev` (a thanks count changed): the newer arrival
 * wins.
 */
export function mergeMessage(list, msg) {
  const held = list.find((m) => m.id === msg.id);
  if (held && (held.rev || 0) > (msg.rev || 0)) return list;
  const out = list.filter((m) => m.id !== msg.id);
  let i = out.length;
  while (i > 0 && out[i - 1].seq > msg.seq) i -= 1;
  out.splice(i, 0, msg);
  return out;
}

/**
 * A page of older history read with `before_seq`: keeps only messages older than `first` (the
 * earliest seq already shown; null when nothing is), in seq order, once each. Returns them,
 * the new earliest seq, and `done` when the start of the thread has been reached.
 */
export function earlierPage(first, messages, limit) {
  const bySeq = new Map();
  for (const m of messages) {
    if (first === null || first === undefined || m.seq < first) bySeq.set(m.seq, m);
  }
  const older = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const next = older.length ? older[0].seq : first ?? null;
  const done = next === null || next <= 1 || messages.length === 0 || (limit !== undefined && messages.length < limit);
  return { messages: older, first: next, done };
}

/** The claims of a JWT, unverified (only to name local storage; the server verifies). */
export function tokenClaims(token) {
  try {
    const part = String(token).split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/** The ws:// or wss:// URL of /v1/ws for an http(s) server base URL. */
export function wsUrl(server) {
  const u = new URL("/v1/ws", server);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

// ---------------------------------------------------------------- errors and events

/**
 * An error of the server (its `code` from docs/protocol.md's error table: bad_frame,
 * bad_request, forbidden, not_found, conflict, too_large, rate_limited (+ retry_after),
 * unavailable, internal, unauthorized; `http_<status>` when an HTTP answer had no error body)
 * or of the SDK itself (SDK_ERROR_CODES). `message` is English, for developers and support;
 * applications show a text of their own chosen by `code`.
 */
export class TsunaguError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "TsunaguError";
    this.code = code;
    Object.assign(this, extra);
  }
}

/**
 * The codes of the SDK's own errors: disconnected (no connection, or it dropped before the
 * answer), closed (close() was called), timeout (no answer within requestTimeout), network
 * (an HTTP request could not be made), token (the getToken provider failed), connect (the
 * WebSocket could not be created), not_open (loadEarlier before open), unsupported (no fetch).
 * The SDK also refuses, with the server's own code, what the server would refuse: a body over
 * `max_body_chars` (`bad_frame`) and a frame over `max_frame_bytes` (`too_large`).
 */
export const SDK_ERROR_CODES = Object.freeze(["disconnected", "closed", "timeout", "network", "token", "connect", "not_open", "unsupported"]);

/** Codes after which a send is not retried: the server refused it for good. */
export const FINAL_SEND_ERRORS = new Set(["bad_frame", "forbidden", "not_found", "too_large", "bad_request"]);

class Emitter {
  constructor() {
    this._handlers = new Map();
  }

  /** Listen to `type` ("*" gets every event as (type, data)); returns an unsubscribe function. */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this._handlers.get(type)?.delete(fn);
  }

  emit(type, data) {
    for (const fn of this._handlers.get(type) ?? []) {
      try {
        fn(data);
      } catch (err) {
        console.error("tsunagu: listener for", type, "failed", err);
      }
    }
    for (const fn of this._handlers.get("*") ?? []) {
      try {
        fn(type, data);
      } catch (err) {
        console.error("tsunagu: listener for * failed", err);
      }
    }
  }
}

// ---------------------------------------------------------------- the client

const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_TOO_BIG = 1009;
const PUSH_TYPES = new Set([
  "receipt", "typing", "presence", "notification", "thread", "thread_updated", "participant", "review",
  "moderation_warning", "escalation",
]);

/**
 * A connection to tsunagu. Options:
 *   server        base URL (default: the page's origin)
 *   token         a JWT, or
 *   getToken      async () => JWT (called before every connect and before expiry)
 *   WebSocket, fetch, storage   injectable (defaults: the globals, localStorage)
 *   backoff       {base, cap, resetAfter, crowdedBase} in ms (default 500, 30000, 60000,
 *                 5000): reconnect delays; the attempt count resets once a connection has
 *                 stayed up resetAfter; after 4029 the delays start from crowdedBase
 *   random        () => [0, 1) for jitter (tests)
 *   pingInterval  ms between client pings that detect a dead network (default 25000; 0: off)
 *   requestTimeout ms to wait for an answer before the socket is considered dead (15000)
 */
export class TsunaguClient extends Emitter {
  constructor(options = {}) {
    super();
    const g = globalThis;
    this.server = options.server || (g.location ? g.location.origin : "http://127.0.0.1:8080");
    this._token = options.token || null;
    this._getToken = options.getToken || null;
    if (!this._token && !this._getToken) throw new TypeError("tsunagu: give a token or getToken");
    this._WebSocket = options.WebSocket || g.WebSocket;
    this._fetch = options.fetch || (g.fetch ? g.fetch.bind(g) : null);
    this.backoff = { base: 500, cap: 30000, resetAfter: 60000, crowdedBase: 5000, ...(options.backoff || {}) };
    this._random = options.random || Math.random;
    this._timers = options.timers || { set: (f, ms) => setTimeout(f, ms), clear: (t) => clearTimeout(t) };
    this.pingInterval = options.pingInterval ?? 25000;
    this.requestTimeout = options.requestTimeout ?? 15000;
    let storage = options.storage;
    if (storage === undefined) {
      try {
        storage = g.localStorage ?? null;
      } catch {
        storage = null;
      }
    }
    this.storage = storage;
    this.outbox = new Outbox(storage, this._outboxKey(this._token));
    this.tracker = new SeqTracker();
    this.state = "idle"; // idle | connecting | open | reconnecting | closed | unauthorized
    this.user = null;
    this.threads = {};
    this.presence = {};
    this.limits = {}; // hello's limits (max_frame_bytes, max_body_chars, rate_per_s, ...)
    this.attempt = 0;
    this._ws = null;
    this._gen = 0; // bumped by close(): an _open still waiting for its token gives up
    this._openingGen = null; // the generation of the _open waiting for its token, if any
    this._stableTimer = null; // resets `attempt` once the connection has stayed up
    this._flushTimer = null; // wakes the outbox when a deferred item may go
    this._inflight = null; // {item, ws}: the send waiting for its answer
    this._fillRetries = new Map(); // thread -> {attempt, timer}: failed gap fills
    this._learnedHistoryMax = null; // the history page size a 400 taught
    this._reqs = new Map();
    this._nextId = 1;
    this._retryTimer = null;
    this._pingTimer = null;
    this._refreshTimer = null;
    this._flushing = false;
    this._filling = new Map(); // thread -> Promise
    this._loading = new Map(); // thread -> buffered messages while the first page loads
    this._first = new Map(); // thread -> earliest seq loaded (loadEarlier pages back from it)
    this._earlier = new Map(); // thread -> the loadEarlier in flight
    this._typingSent = new Map();
    this._wanted = false;
    this._listening = false;
    this._onOnline = () => this.reconnectNow();
    // Another tab wrote the shared outbox (or a heartbeat found a gone tab): adopt what a
    // closed or crashed tab left, forget what another tab sent.
    this._outboxChanged = () => {
      this.emit("outbox", { items: this.outbox.items.slice() });
      this._flush();
    };
    this.outbox.onchange = this._outboxChanged;
    this._onStorage = (ev) => {
      if (ev && ev.key !== null && ev.key !== undefined && ev.key !== this.outbox.key) return;
      if (ev && ev.storageArea && this.storage && ev.storageArea !== this.storage) return;
      if (this.outbox.sync()) this._outboxChanged();
    };
    this._onPageHide = () => this.outbox.release();
    // Back from the back/forward cache: live again, and claim what no other tab took.
    this._onPageShow = (ev) => {
      if (!ev || !ev.persisted || this.state === "closed") return;
      this.outbox.live();
      this._onStorage();
    };
    this._listen(true);
  }

  _listen(on) {
    const g = globalThis;
    if (this._listening === on || !g.addEventListener) return;
    this._listening = on;
    const method = on ? "addEventListener" : "removeEventListener";
    g[method]("online", this._onOnline);
    g[method]("storage", this._onStorage);
    g[method]("pagehide", this._onPageHide);
    g[method]("pageshow", this._onPageShow);
  }

  /** hello's limits over the documented defaults. */
  _limits() {
    return { ...DEFAULT_LIMITS, ...this.limits };
  }

  _outboxKey(token) {
    const sub = token ? tokenClaims(token).sub : null;
    const host = (() => {
      try {
        return new URL(this.server).host;
      } catch {
        return "";
      }
    })();
    return sub ? `tsunagu.outbox:${host}:${sub}` : `tsunagu.outbox:${host}`;
  }

  async token() {
    if (this._getToken) {
      this._token = await this._getToken();
      this.outbox.rekey(this._outboxKey(this._token));
    }
    return this._token;
  }

  _setState(state, detail = {}) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", { state, ...detail });
  }

  // --- connection

  /** Open the connection (and keep it open until close()). Resolves after hello is answered. */
  connect() {
    this._wanted = true;
    this._listen(true);
    this.outbox.live();
    if (this._ws || this._retryTimer || this._openingGen === this._gen) return this._opened ?? Promise.resolve();
    this._opened = new Promise((resolve) => {
      this._resolveOpened = resolve;
    });
    this._open();
    return this._opened;
  }

  /** Close for good (no reconnect). Unsent messages stay in the outbox. */
  close() {
    this._wanted = false;
    this._gen += 1;
    this._openingGen = null;
    this._timers.clear(this._retryTimer);
    this._retryTimer = null;
    this._timers.clear(this._stableTimer);
    this._stableTimer = null;
    this._timers.clear(this._flushTimer);
    this._flushTimer = null;
    for (const r of this._fillRetries.values()) this._timers.clear(r.timer);
    this._fillRetries.clear();
    this._stopTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(1000, "client closed");
      } catch {
        // already closed
      }
    }
    this._failRequests(new TsunaguError("closed", "connection closed"));
    this._setState("closed");
    // The unsent messages stay stored; another tab (or the next page) may send them.
    this.outbox.release();
    this._listen(false);
  }

  /** Skip the remaining backoff delay (for example when the browser comes back online). */
  reconnectNow() {
    if (!this._wanted || this._ws || this._openingGen === this._gen) return;
    this._timers.clear(this._retryTimer);
    this._retryTimer = null;
    this.attempt = 0;
    this._open();
  }

  async _open() {
    this._retryTimer = null;
    const gen = this._gen;
    // One socket at a time: connect() or reconnectNow() while getToken is pending waits for it.
    if (this._ws || this._openingGen === gen) return;
    this._openingGen = gen;
    this._setState(this.attempt === 0 && !this.user ? "connecting" : "reconnecting", { attempt: this.attempt });
    let token;
    try {
      token = await this.token();
    } catch (err) {
      if (gen !== this._gen) return;
      this._openingGen = null;
      this.emit("error", new TsunaguError("token", `token provider failed: ${err}`));
      this._scheduleReconnect();
      return;
    }
    if (gen !== this._gen) return; // close() was called meanwhile
    this._openingGen = null;
    if (!this._wanted || this._ws) return;
    let ws;
    try {
      ws = new this._WebSocket(wsUrl(this.server));
    } catch (err) {
      this.emit("error", new TsunaguError("connect", String(err)));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      const resume = this.tracker.resumeMap();
      this._request({ type: "hello", token, resume }, ws)
        .then((ok) => this._hello(ok, ws))
        .catch(() => {});
    };
    ws.onmessage = (ev) => this._frame(ev.data, ws);
    ws.onerror = () => {};
    ws.onclose = (ev) => this._closed(ev, ws);
  }

  _hello(ok, ws) {
    if (ws !== this._ws) return;
    // The attempt count resets only once this connection has stayed up a while: a server
    // that answers hello and then closes at once gets ever longer delays, not a hot loop.
    this._timers.clear(this._stableTimer);
    this._stableTimer = this._timers.set(() => {
      this._stableTimer = null;
      if (ws === this._ws) this.attempt = 0;
    }, this.backoff.resetAfter);
    this.user = ok.user;
    this.threads = ok.threads || {};
    this.presence = { ...this.presence, ...(ok.presence || {}) };
    this.limits = { ...(ok.limits || {}) };
    this.outbox.rekey(this._outboxKey(this._token));
    if (this.outbox.sync()) this.emit("outbox", { items: this.outbox.items.slice() });
    this._setState("open");
    this.emit("hello", ok);
    for (const [user, status] of Object.entries(ok.presence || {})) this.emit("presence", { user, status });
    this._startTimers(ok.user && ok.user.exp);
    if (this._resolveOpened) {
      this._resolveOpened(ok);
      this._resolveOpened = null;
    }
    this._flush();
  }

  _closed(ev, ws) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._stopTimers();
    this._timers.clear(this._stableTimer);
    this._stableTimer = null;
    // 1009: a frame was over the server's limit. If a send was waiting, it was that one:
    // resending it would close the socket again, forever. It fails instead.
    if (ev.code === CLOSE_TOO_BIG && this._inflight && this._inflight.ws === ws) {
      const { item } = this._inflight;
      this._inflight = null;
      this._refuse(item, new TsunaguError("too_large",
        "the server closed the connection (1009): the message is larger than its frame limit", { close_code: ev.code }));
    }
    this._failRequests(new TsunaguError("disconnected", `connection closed (${ev.code})`));
    if (!this._wanted) return;
    if (ev.code === CLOSE_UNAUTHORIZED && !this._getToken) {
      this._setState("unauthorized", { code: ev.code, reason: ev.reason });
      this._wanted = false;
      return;
    }
    this._scheduleReconnect(ev.code);
  }

  _scheduleReconnect(code) {
    if (!this._wanted || this._retryTimer) return;
    const delay = reconnectDelay(code, this.attempt, this.backoff, this._random);
    this.attempt += 1;
    this._setState("reconnecting", { attempt: this.attempt, delay, code });
    this.emit("retry", { attempt: this.attempt, delay, code });
    this._retryTimer = this._timers.set(() => this._open(), delay);
  }

  _startTimers(exp) {
    this._stopTimers();
    if (this.pingInterval > 0) {
      const tick = () => {
        this._pingTimer = this._timers.set(tick, this.pingInterval);
        this.request({ type: "ping" }).catch(() => {});
      };
      this._pingTimer = this._timers.set(tick, this.pingInterval);
    }
    if (this._getToken && exp) this._armRefresh(exp);
  }

  /** Refresh the token ~60 s before `exp`; a far `exp` waits in steps setTimeout can take. */
  _armRefresh(exp) {
    const ms = exp * 1000 - Date.now() - 60000;
    if (ms > MAX_TIMER_MS) {
      this._refreshTimer = this._timers.set(() => this._armRefresh(exp), MAX_TIMER_MS);
      return;
    }
    this._refreshTimer = this._timers.set(() => this._refreshToken(), Math.max(5000, ms));
  }

  _stopTimers() {
    this._timers.clear(this._pingTimer);
    this._timers.clear(this._refreshTimer);
    this._pingTimer = null;
    this._refreshTimer = null;
  }

  async _refreshToken() {
    try {
      const token = await this.token();
      const ok = await this.request({ type: "token", token });
      this._startTimers(ok.exp);
    } catch (err) {
      this.emit("error", err);
    }
  }

  _failRequests(err) {
    const reqs = [...this._reqs.values()];
    this._reqs.clear();
    for (const r of reqs) {
      this._timers.clear(r.timer);
      r.reject(err);
    }
  }

  // --- requests and frames

  /** Send a frame and wait for its `ok` (resolves) or `error` (rejects with TsunaguError). */
  request(frame) {
    if (!this._ws || this.state !== "open") {
      return Promise.reject(new TsunaguError("disconnected", "not connected"));
    }
    return this._request(frame, this._ws);
  }

  _request(frame, ws) {
    const id = `r${this._nextId++}`;
    const data = JSON.stringify({ ...frame, id });
    if (frame.type !== "hello") {
      // A frame over the server's limit would close the socket (1009): refuse it here.
      const max = this._limits().max_frame_bytes;
      const bytes = data.length * 3 > max ? frameBytes({ ...frame, id }) : 0;
      if (bytes > max) {
        return Promise.reject(new TsunaguError("too_large",
          `the ${frame.type} frame (${bytes} bytes) is larger than the server's limit of ${max} bytes`, { limit: max, size: bytes }));
      }
    }
    return new Promise((resolve, reject) => {
      const timer = this._timers.set(() => {
        if (!this._reqs.has(id)) return;
        this._reqs.delete(id);
        reject(new TsunaguError("timeout", `no answer to ${frame.type}`));
        // A socket that does not answer is dead even if the browser has not noticed yet.
        if (ws === this._ws) {
          try {
            ws.close(4000, "no answer");
          } catch {
            // ignore
          }
          this._closed({ code: 4000, reason: "no answer" }, ws);
        }
      }, this.requestTimeout);
      this._reqs.set(id, { resolve, reject, timer });
      try {
        ws.send(data);
      } catch (err) {
        this._timers.clear(timer);
        this._reqs.delete(id);
        reject(new TsunaguError("disconnected", String(err)));
      }
    });
  }

  _frame(data, ws) {
    if (ws !== this._ws) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if ((frame.type === "ok" || frame.type === "error") && frame.re && this._reqs.has(frame.re)) {
      const r = this._reqs.get(frame.re);
      this._reqs.delete(frame.re);
      this._timers.clear(r.timer);
      if (frame.type === "ok") r.resolve(frame);
      else {
        const { type, re, code, message, ...extra } = frame;
        r.reject(new TsunaguError(code, message, extra));
      }
      return;
    }
    switch (frame.type) {
      case "message":
        this._ingest(frame.message);
        return;
      case "update":
        this.emit("update", { action: frame.action, by: frame.by, message: frame.message });
        return;
      case "presence":
        this.presence[frame.user] = frame.status;
        this.emit("presence", { user: frame.user, status: frame.status });
        return;
      case "error": {
        const { type, re, code, message, ...extra } = frame;
        this.emit("error", new TsunaguError(code, message, extra));
        return;
      }
      case "withheld": {
        // A held message was released (it also arrives as a `message`) or rejected.
        const { type, ...rest } = frame;
        this.emit("withheld_status", rest);
        return;
      }
      default: {
        const { type, ...rest } = frame;
        if (PUSH_TYPES.has(type)) this.emit(type, rest);
        else this.emit("frame", frame);
      }
    }
  }

  // --- ordered delivery

  _ingest(msg) {
    const buffer = this._loading.get(msg.thread);
    if (buffer) {
      buffer.push(msg);
      return;
    }
    const { deliver, gap } = this.tracker.accept(msg);
    for (const m of deliver) this.emit("message", m);
    if (deliver.length) this.emit("seq", { thread: msg.thread, seq: this.tracker.last(msg.thread) });
    if (gap) this._fill(msg.thread);
  }

  /**
   * Read the missing range of a thread from history (one fill per thread at a time). A failed
   * read (HTTP error, network) is retried with backoff while the gap is open.
   */
  _fill(thread) {
    if (this._filling.has(thread)) return this._filling.get(thread);
    const retry = this._fillRetries.get(thread);
    if (retry) {
      this._timers.clear(retry.timer);
      retry.timer = null;
    }
    const run = (async () => {
      this.emit("gap", { thread, ...this.tracker.pendingGap(thread) });
      for (let guard = 0; guard < 1000; guard += 1) {
        const gap = this.tracker.pendingGap(thread);
        if (!gap) return;
        const { page } = await this._page(thread, { afterSeq: this.tracker.last(thread), limit: this._historyMax() });
        const before = this.tracker.last(thread);
        for (const m of page.messages) {
          for (const d of this.tracker.accept(m).deliver) this.emit("message", d);
        }
        if (this.tracker.last(thread) === before) return; // nothing more in storage yet
      }
    })()
      .then(() => this._fillRetries.delete(thread))
      .catch((err) => {
        this.emit("error", err);
        this._retryFill(thread, err);
      })
      .finally(() => {
        this._filling.delete(thread);
        this.emit("seq", { thread, seq: this.tracker.last(thread) });
      });
    this._filling.set(thread, run);
    return run;
  }

  /** Try a failed fill again after a backoff (or the server's retry_after). */
  _retryFill(thread, err) {
    if (this.state === "closed" || !this.tracker.pendingGap(thread)) return;
    if (err.status === 401 && !this._getToken) return; // the fixed token is refused: no use
    if (err.status === 403 || err.status === 404) return; // no longer a participant, or gone
    const r = this._fillRetries.get(thread) || { attempt: 0, timer: null };
    this._timers.clear(r.timer);
    let wait = backoffDelay(r.attempt, this.backoff, this._random);
    if (err.code === "rate_limited" && err.retry_after > 0) wait = Math.max(wait, err.retry_after * 1000);
    r.attempt += 1;
    r.timer = this._timers.set(() => {
      r.timer = null;
      this._fill(thread);
    }, Math.min(wait, MAX_TIMER_MS));
    this._fillRetries.set(thread, r);
  }

  /**
   * Start following a thread: load its latest page (or, when it is already tracked, what came
   * after the last seq) and emit its messages; later pushes are delivered in seq order.
   * Resolves to the loaded messages.
   */
  async open(thread, { limit = 100 } = {}) {
    if (this.tracker.isTracked(thread)) {
      await this._fill(thread);
      const out = [];
      for (let guard = 0; guard < 1000; guard += 1) {
        const before = this.tracker.last(thread);
        const r = await this._page(thread, { afterSeq: before, limit: this._historyMax() });
        for (const m of r.page.messages) this._ingest(m);
        out.push(...r.page.messages);
        if (r.page.messages.length < r.limit || this.tracker.last(thread) === before) break;
      }
      return out;
    }
    this._loading.set(thread, []);
    let page;
    try {
      page = await this.history(thread, { limit });
    } catch (err) {
      const buffered = this._loading.get(thread) || [];
      this._loading.delete(thread);
      for (const m of buffered) this._ingest(m);
      throw err;
    }
    const msgs = page.messages;
    const start = msgs.length ? msgs[0].seq - 1 : page.last_seq ?? 0;
    this.tracker.track(thread, start);
    this._first.set(thread, start + 1);
    const buffered = this._loading.get(thread) || [];
    this._loading.delete(thread);
    for (const m of msgs) this._ingest(m);
    for (const m of buffered) this._ingest(m);
    return msgs;
  }

  /** Whether an opened thread has messages older than those loaded so far. */
  hasEarlier(thread) {
    return (this._first.get(thread) ?? 1) > 1;
  }

  /**
   * Load the page of history before the earliest message loaded so far (after `open()`), with
   * `GET /v1/threads/{id}/messages?before_seq=`. Resolves to `{messages, done}`: the older
   * messages in seq order, each once over all calls (they are not emitted as `message`
   * events, which stay for what follows the opened page; an `earlier` event carries them),
   * and `done` once the start of the thread is reached. Concurrent calls share one request.
   */
  loadEarlier(thread, { limit = 50 } = {}) {
    if (this._earlier.has(thread)) return this._earlier.get(thread);
    if (!this._first.has(thread)) return Promise.reject(new TsunaguError("not_open", `open(${thread}) first`));
    if (!this.hasEarlier(thread)) return Promise.resolve({ messages: [], done: true });
    const run = (async () => {
      const first = this._first.get(thread);
      // The page may come back smaller than asked when the server's page limit is lower.
      const { page, limit: used } = await this._page(thread, { beforeSeq: first, limit });
      const out = earlierPage(this._first.get(thread), page.messages || [], used);
      if (out.done) this._first.set(thread, 1);
      else this._first.set(thread, out.first);
      const result = { messages: out.messages, done: out.done };
      this.emit("earlier", { thread, ...result });
      return result;
    })().finally(() => this._earlier.delete(thread));
    this._earlier.set(thread, run);
    return run;
  }

  // --- outbox

  /**
   * Queue a message; it is sent now or after the next reconnect. Returns the outbox item.
   * A message the server would refuse for its size (a body over hello's `max_body_chars`:
   * `bad_frame`; a frame over `max_frame_bytes`, 64 KiB unless hello says otherwise:
   * `too_large`) is not queued: a `failed` event follows at once, and the item returned has
   * the `error`.
   */
  send(thread, body, { clientMsgId } = {}) {
    const fresh = {
      client_msg_id: clientMsgId || newClientMsgId(this._random),
      thread,
      body,
      created_at: new Date().toISOString(),
    };
    this._typingSent.delete(thread); // the next keystroke starts a new "typing"
    const problem = sendSizeProblem(fresh, this._limits());
    if (problem) {
      const { code, message, ...extra } = problem;
      const item = { attempts: 0, ...fresh };
      item.error = this._refuse(item, new TsunaguError(code, message, extra));
      return item;
    }
    const item = this.outbox.add(fresh);
    this.emit("outbox", { items: this.outbox.items.slice() });
    this._flush();
    return item;
  }

  /** Take an item out of the outbox for good: `failed` with `error`. */
  _refuse(item, error) {
    const queued = this.outbox.items.some((i) => i.client_msg_id === item.client_msg_id);
    if (queued) this.outbox.remove(item.client_msg_id);
    this.emit("failed", { item, error });
    if (queued) this.emit("outbox", { items: this.outbox.items.slice() });
    return error;
  }

  /** Drop an unsent message from the outbox. */
  discard(clientMsgId) {
    this.outbox.remove(clientMsgId);
    this.emit("outbox", { items: this.outbox.items.slice() });
  }

  pending(thread) {
    return thread ? outboxForThread(this.outbox.items, thread) : this.outbox.items.slice();
  }

  /** Flush again when the earliest deferred item may go (`at`: ms since the epoch, or null). */
  _wakeFlush(at) {
    this._timers.clear(this._flushTimer);
    this._flushTimer = null;
    if (at === null || at === undefined) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now()) + 5);
    this._flushTimer = this._timers.set(() => {
      this._flushTimer = null;
      this._flush();
    }, wait);
  }

  async _flush() {
    if (this._flushing) return;
    this._flushing = true;
    try {
      while (this.state === "open") {
        const now = Date.now();
        const item = this.outbox.next(now);
        if (!item) {
          this._wakeFlush(outboxWakeAt(this.outbox.items, now));
          return;
        }
        const problem = sendSizeProblem(item, this._limits());
        if (problem) {
          // Queued before hello told the limits (or by an older page): refused for good.
          const { code, message, ...extra } = problem;
          this._refuse(item, new TsunaguError(code, message, extra));
          continue;
        }
        this.outbox.attempt(item.client_msg_id);
        this._inflight = { item, ws: this._ws };
        let ok;
        try {
          ok = await this.request({
            type: "send", thread: item.thread, client_msg_id: item.client_msg_id, body: item.body,
          });
        } catch (err) {
          if (err.code === "rate_limited") {
            this.outbox.defer(item.client_msg_id, Date.now() + 1000 * (err.retry_after || 1));
            continue;
          }
          if (FINAL_SEND_ERRORS.has(err.code)) {
            this._refuse(item, err);
            continue;
          }
          // Disconnected or timed out: the item stays; the next open flushes again.
          if (err.code === "disconnected" || err.code === "timeout" || err.code === "closed") return;
          // unavailable, internal (or a code this SDK does not know): the send was not
          // applied. Retry it, same client_msg_id, after a backoff with full jitter; the
          // messages after it in its thread wait (they stay in order).
          const failures = this.outbox.items.find((i) => i.client_msg_id === item.client_msg_id)?.failures || 0;
          const delay = backoffDelay(failures, this.backoff, this._random);
          this.outbox.defer(item.client_msg_id, Date.now() + delay, { failed: true });
          this.emit("retry_send", { item, error: err, delay });
          continue;
        } finally {
          this._inflight = null;
        }
        this.outbox.remove(item.client_msg_id);
        if (ok.message) {
          this.emit("sent", { item, message: ok.message, duplicate: !!ok.duplicate, moderation: ok.moderation });
          this._ingest(ok.message);
        }
        if (ok.withheld) this.emit("withheld", { item, withheld: ok.withheld, moderation: ok.moderation });
        this.emit("outbox", { items: this.outbox.items.slice() });
      }
    } finally {
      this._flushing = false;
    }
  }

  // --- other operations

  read(thread, seq) {
    return this.request({ type: "read", thread, seq });
  }

  /** Tell the others you are typing (sent at most every `everyMs`). */
  typing(thread, everyMs = 3000) {
    const now = Date.now();
    if (now - (this._typingSent.get(thread) || 0) < everyMs || this.state !== "open") return;
    this._typingSent.set(thread, now);
    try {
      this._ws.send(JSON.stringify({ type: "typing", thread }));
    } catch {
      // not connected: typing is best effort
    }
  }

  edit(thread, message, body) {
    return this.request({ type: "edit", thread, message, body });
  }

  delete(thread, message) {
    return this.request({ type: "delete", thread, message });
  }

  thank(thread, message) {
    return this.request({ type: "thanks", thread, message });
  }

  // --- HTTP

  /** Call the HTTP API with the token; resolves to the JSON body, rejects with TsunaguError. */
  async http(method, path, body) {
    if (!this._fetch) throw new TsunaguError("unsupported", "no fetch available");
    let token = this._token;
    if (!token) {
      try {
        token = await this.token();
      } catch (err) {
        throw new TsunaguError("token", `token provider failed: ${err}`, { cause: err });
      }
    }
    let res;
    try {
      res = await this._fetch(new URL(path, this.server).toString(), {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      // fetch rejects (TypeError "Failed to fetch") when the request cannot be made at all.
      throw new TsunaguError("network", `${method} ${path} failed: ${err}`, { cause: err });
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      const extra = { status: res.status };
      if (typeof e.retry_after === "number") extra.retry_after = e.retry_after;
      throw new TsunaguError(e.code || `http_${res.status}`, e.message || `HTTP ${res.status}`, extra);
    }
    return data;
  }

  /** The largest history page to ask for: hello's `history_max_limit`, a 400's, else 500. */
  _historyMax() {
    const advertised = Number(this.limits.history_max_limit);
    const max = advertised > 0 ? advertised : DEFAULT_LIMITS.history_max_limit;
    return this._learnedHistoryMax ? Math.min(max, this._learnedHistoryMax) : max;
  }

  /**
   * One history page, asking for at most the server's page limit; a 400 naming `limit` (a
   * server whose limit is lower than assumed) is asked again with a smaller page. Resolves to
   * `{page, limit}` (the limit used).
   */
  async _page(thread, { afterSeq, beforeSeq, limit = 100 } = {}) {
    let size = Math.max(1, Math.min(limit, this._historyMax()));
    for (let tries = 0; ; tries += 1) {
      const q = new URLSearchParams();
      if (afterSeq !== undefined && afterSeq !== null) q.set("after_seq", String(afterSeq));
      if (beforeSeq !== undefined && beforeSeq !== null) q.set("before_seq", String(beforeSeq));
      q.set("limit", String(size));
      try {
        const page = await this.http("GET", `/v1/threads/${encodeURIComponent(thread)}/messages?${q}`);
        return { page, limit: size };
      } catch (err) {
        if (err.status !== 400 || !/\blimit\b/.test(String(err.message)) || size <= 1 || tries >= 8) throw err;
        const max = historyLimitFromError(err);
        if (max !== null && max >= size) throw err; // not about the page size
        size = max !== null && max >= 1 ? max : Math.max(1, Math.floor(size / 2));
        this._learnedHistoryMax = size;
      }
    }
  }

  /**
   * A page of a thread's history (`GET /v1/threads/{id}/messages`). `limit` is capped at the
   * server's page limit (hello's `history_max_limit`, or learned from a 400).
   */
  history(thread, options = {}) {
    return this._page(thread, options).then((r) => r.page);
  }

  thread(thread) {
    return this.http("GET", `/v1/threads/${encodeURIComponent(thread)}`).then((d) => d.thread);
  }

  /**
   * This user's own messages in a thread that moderation withheld (`held` until a moderator
   * decides, `rejected`, `blocked`; `released` ones on request), oldest first; null when the
   * server has no such call (404/405).
   */
  async withheldMessages(thread, { status = ["held", "rejected", "blocked"], limit = 100 } = {}) {
    const q = new URLSearchParams({ status: [].concat(status).join(","), limit: String(limit) });
    try {
      const data = await this.http("GET", `/v1/threads/${encodeURIComponent(thread)}/withheld?${q}`);
      return data.withheld || [];
    } catch (err) {
      // The thread was opened, so a 404 here is a server without this call.
      if (err.status === 404 || err.status === 405) return null;
      throw err;
    }
  }

  /** The notification inbox, or null when the service has no notifications API (404). */
  async notifications() {
    try {
      return await this.http("GET", "/v1/notifications");
    } catch (err) {
      if (err.status === 404 || err.status === 405) return null;
      throw err;
    }
  }

  markNotificationRead(id) {
    return this.http("POST", `/v1/notifications/${encodeURIComponent(id)}/read`, {});
  }
}

export default TsunaguClient;
