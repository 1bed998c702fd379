// The SDK when the server says no: messages over its limits, transient send errors, the rate
// limit, shared outboxes of several tabs, reconnect policy per close code, a smaller history
// page limit, failing gap fills, connect() while the token is fetched, far token expiries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { MAX_TIMER_MS, TsunaguClient, outboxParse } from "../../chat/static/tsunagu.js";
import { FakeServer, MemoryStorage, until } from "./fake_server.mjs";

const TOKEN = "h.eyJzdWIiOiJtZSJ9.s";
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

function client(server, storage = new MemoryStorage(), extra = {}) {
  const c = new TsunaguClient({
    server: "http://chat.test", token: TOKEN, WebSocket: server.WebSocket, fetch: server.fetch,
    storage, backoff: { base: 2, cap: 10 }, pingInterval: 0, ...extra,
  });
  c.got = [];
  c.failed = [];
  c.retries = [];
  c.errors = [];
  c.on("message", (m) => c.got.push(m));
  c.on("failed", (f) => c.failed.push(f));
  c.on("retry", (r) => c.retries.push(r));
  c.on("error", (e) => c.errors.push(e));
  return c;
}

const seqs = (c, thread = "t1") => c.got.filter((m) => m.thread === thread).map((m) => m.seq);
const bodies = (s, thread = "t1") => s.thread(thread).map((m) => m.body);

// ---------------------------------------------------------------- 1. too large

test("a send over hello's limits is refused at once: failed, not queued, never sent", async () => {
  const s = new FakeServer();
  s.limits = { max_frame_bytes: 2048, max_body_chars: 40, rate_per_s: 10, rate_burst: 30 };
  const storage = new MemoryStorage();
  const c = client(s, storage);
  try {
    await c.connect();
    assert.deepEqual(c.limits, s.limits);
    const long = c.send("t1", "あ".repeat(41));
    assert.equal(c.failed.length, 1, "failed at once");
    assert.equal(c.failed[0].error.code, "bad_frame"); // as the server would answer it
    assert.match(c.failed[0].error.message, /longer than 40 characters/);
    assert.equal(long.error.code, "bad_frame");
    const fits = c.send("t1", "\u0001".repeat(39)); // 39 characters, 6 bytes each in JSON
    assert.equal(fits.error, undefined);
    assert.equal(c.send("t1", "x".repeat(3000)).error.code, "bad_frame");
    await until(() => c.pending().length === 0, 3000, "the message that fits");
    assert.deepEqual(bodies(s), ["\u0001".repeat(39)]);
    assert.deepEqual(s.sends.map((f) => f.body), ["\u0001".repeat(39)], "nothing over the limits was sent");
    assert.equal(storage.getItem(c.outbox.key), null, "nothing stored");
    c.close();
    // A frame over max_frame_bytes (characters within max_body_chars): too_large.
    s.limits = { max_frame_bytes: 200, max_body_chars: 1000 };
    const d = client(s, storage);
    await d.connect();
    const frame = d.send("t1", "é".repeat(150));
    assert.equal(frame.error.code, "too_large");
    assert.equal(d.failed[0].error.limit, 200);
    assert.deepEqual(d.pending(), []);
    assert.equal(s.sends.length, 1);
    d.close();
  } finally {
    c.close();
  }
});

test("a 1009 close fails the send that caused it instead of resending it forever", async () => {
  const s = new FakeServer();
  s.maxFrameBytes = 1000; // enforced but not advertised: the SDK assumes the 64 KiB default
  const c = client(s, new MemoryStorage(), { backoff: { base: 2, cap: 10 } });
  try {
    await c.connect();
    await c.open("t1");
    const big = c.send("t1", "x".repeat(2000));
    c.send("t1", "after it");
    await until(() => c.failed.length === 1, 3000, "the too-large send failed");
    assert.equal(c.failed[0].item.client_msg_id, big.client_msg_id);
    assert.equal(c.failed[0].error.code, "too_large");
    await until(() => c.pending().length === 0 && c.state === "open", 3000, "the next one sent");
    await pause(50);
    assert.equal(s.tooBig, 1, "sent once, not again after the reconnect");
    assert.deepEqual(bodies(s), ["after it"]);
    assert.ok(s.hellos.length <= 3, `${s.hellos.length} hellos`);
  } finally {
    c.close();
  }
});

test("a frame over the advertised limit is refused without closing the socket (edit too)", async () => {
  const s = new FakeServer();
  s.limits = { max_frame_bytes: 300, max_body_chars: 10000 };
  s.maxFrameBytes = 300;
  const c = client(s);
  try {
    await c.connect();
    await assert.rejects(c.edit("t1", "m1", "y".repeat(400)), (err) => err.code === "too_large" && err.limit === 300);
    assert.equal(c.state, "open");
    assert.equal(s.tooBig ?? 0, 0);
  } finally {
    c.close();
  }
});

// ---------------------------------------------------------------- 2. unavailable / internal

test("unavailable and internal answers are retried after a backoff, same client_msg_id, in order", async () => {
  const s = new FakeServer();
  s.sendErrors = [{ code: "unavailable" }, { code: "internal" }];
  const c = client(s);
  const waits = [];
  c.on("retry_send", (r) => waits.push([r.error.code, r.delay]));
  try {
    await c.connect();
    await c.open("t1");
    const a = c.send("t1", "a");
    c.send("t1", "b");
    await until(() => c.pending().length === 0, 3000, "both stored");
    assert.deepEqual(bodies(s), ["a", "b"]);
    assert.deepEqual(s.sends.map((f) => f.body), ["a", "a", "a", "b"], "b waits for a");
    assert.ok(s.sends.slice(0, 3).every((f) => f.client_msg_id === a.client_msg_id));
    assert.deepEqual(waits.map((w) => w[0]), ["unavailable", "internal"]);
    assert.ok(waits.every(([, d]) => d >= 0 && d < 10), "full jitter under the cap");
    assert.deepEqual(c.failed, []);
  } finally {
    c.close();
  }
});

// ---------------------------------------------------------------- 3. order under rate limiting

test("rate_limited defers a message without letting later ones of its thread overtake it", async () => {
  const s = new FakeServer();
  s.sendErrors = [{ code: "rate_limited", retry_after: 0.03 }];
  const c = client(s);
  try {
    await c.connect();
    await c.open("t1");
    c.send("t1", "first");
    c.send("t1", "second");
    c.send("t2", "other thread");
    await until(() => c.pending().length === 0, 3000, "all stored");
    assert.deepEqual(bodies(s), ["first", "second"]);
    assert.deepEqual(s.sends.map((f) => f.body), ["first", "other thread", "first", "second"],
      "another thread goes on meanwhile");
    assert.deepEqual(seqs(c), [1, 2]);
  } finally {
    c.close();
  }
});

// ---------------------------------------------------------------- 4. tabs sharing an outbox

test("two tabs of one user keep each other's unsent messages; the next page sends all", async () => {
  const s = new FakeServer();
  const storage = new MemoryStorage();
  s.refuse = true;
  const a = client(s, storage);
  const b = client(s, storage);
  a.connect();
  b.connect();
  a.send("t1", "from A");
  b.send("t1", "from B");
  a.send("t1", "from A again");
  assert.equal(a.outbox.key, b.outbox.key);
  const stored = () => outboxParse(storage.getItem(a.outbox.key)).map((i) => i.body).sort();
  assert.deepEqual(stored(), ["from A", "from A again", "from B"]);
  a.close();
  b.close();
  s.refuse = false;
  const c = client(s, storage);
  try {
    assert.equal(c.pending().length, 3);
    await c.connect();
    await until(() => c.pending().length === 0, 3000, "all flushed");
    assert.deepEqual(bodies(s).sort(), ["from A", "from A again", "from B"]);
    assert.deepEqual(bodies(s).filter((x) => x.startsWith("from A")), ["from A", "from A again"]);
    assert.equal(storage.getItem(c.outbox.key), null);
  } finally {
    c.close();
  }
});

test("a live tab sends what a closed tab left (storage event), and forgets what another sent", async () => {
  const s = new FakeServer();
  const down = new FakeServer(); // the other tab's network is down
  down.refuse = true;
  const storage = new MemoryStorage();
  const other = client(down, storage);
  other.connect();
  other.send("t1", "left behind");
  // The other tab stops beating (crashed or frozen): a page opened now takes its items over.
  storage.removeItem(other.outbox.aliveKey);
  const live = client(s, storage);
  try {
    assert.equal(live.pending().length, 1, "adopted when the page was opened");
    await live.connect();
    await until(() => live.pending().length === 0, 3000, "sent by the live tab");
    // The other tab still has it in memory; it must not write it back.
    assert.equal(other.pending().length, 1);
    other._onStorage({ key: other.outbox.key });
    assert.equal(other.pending().length, 0, "sent elsewhere: forgotten");
    other.send("t1", "written in the tab that closes next");
    live._onStorage({ key: live.outbox.key, storageArea: storage });
    assert.equal(live.pending().length, 0, "a live tab's item stays its own");
    other.close(); // releases its items
    live._onStorage({ key: live.outbox.key, storageArea: storage });
    assert.equal(live.pending().length, 1, "released: adopted");
    await until(() => live.pending().length === 0, 3000, "the released item sent");
    assert.deepEqual(bodies(s), ["left behind", "written in the tab that closes next"]);
    assert.equal(storage.getItem(live.outbox.key), null);
    assert.equal(down.sends.length, 0);
  } finally {
    other.close();
    live.close();
  }
});

test("a tab opened next to a live one leaves its unsent message alone: only one tab sends it", async () => {
  const s = new FakeServer();
  const down = new FakeServer(); // tab A's network is down: its message waits
  down.refuse = true;
  const storage = new MemoryStorage();
  const a = client(down, storage);
  a.connect();
  a.send("t1", "from A");
  const b = client(s, storage);
  try {
    await b.connect();
    await pause(30);
    assert.equal(b.pending().length, 0, "A lives: its message stays A's");
    assert.equal(s.sends.length, 0, "B does not send it");
    assert.equal(a.pending().length, 1);
    assert.deepEqual(outboxParse(storage.getItem(a.outbox.key)).map((i) => i.owner), [a.outbox.owner]);
    a.close(); // pagehide/close: released, B takes it over
    b._onStorage({ key: b.outbox.key, storageArea: storage });
    await until(() => b.pending().length === 0 && s.sends.length === 1, 3000, "sent by B");
    assert.deepEqual(bodies(s), ["from A"]);
  } finally {
    a.close();
    b.close();
  }
});

// ---------------------------------------------------------------- 5. reconnect policy

test("a server that answers hello and then closes gets ever longer delays, not a hot loop", async () => {
  const s = new FakeServer();
  s.closeAfterHello = 1011;
  const c = client(s, new MemoryStorage(), { backoff: { base: 2, cap: 1000 }, random: () => 0.99 });
  try {
    c.connect();
    await until(() => c.retries.length >= 5, 3000, "five retries");
    assert.deepEqual(c.retries.slice(0, 5).map((r) => r.attempt), [1, 2, 3, 4, 5]);
    assert.deepEqual(c.retries.slice(0, 5).map((r) => r.delay), [3, 3, 7, 15, 31]);
    assert.ok(s.hellos.length >= 5, "hello was answered each time");
  } finally {
    c.close();
  }
});

test("after 4029 the reconnect delay starts from the larger crowdedBase; 4008 backs off", async () => {
  for (const [code, first] of [[4029, 39], [4008, 3]]) {
    const s = new FakeServer();
    s.closeAfterHello = code;
    const c = client(s, new MemoryStorage(), { backoff: { base: 2, cap: 1000, crowdedBase: 40 }, random: () => 0.99 });
    try {
      c.connect();
      await until(() => c.retries.length >= 3, 3000, "three retries");
      assert.equal(c.retries[0].code, code);
      assert.equal(c.retries[0].delay, first, `first delay after ${code}`);
      assert.ok(c.retries[2].delay > c.retries[0].delay, `${code}: growing`);
    } finally {
      c.close();
    }
  }
});

// ---------------------------------------------------------------- 6. history page limit, fill retries

test("gap fill and open() of a followed thread work with a server page limit below 500", async () => {
  const s = new FakeServer();
  s.historyMax = 200;
  const c = client(s);
  try {
    await c.connect();
    await c.open("t1");
    s.dropPush.add(2);
    for (const b of ["1", "2", "3"]) s.post("t1", "sato", b);
    await until(() => c.got.length === 3, 3000, "gap filled");
    assert.deepEqual(seqs(c), [1, 2, 3]);
    s.post("t1", "sato", "4 (pushed)");
    await until(() => c.got.length === 4);
    c.tracker.cursors.set("t1", 2); // forget two: open() reads what follows from history
    c.got = [];
    await c.open("t1");
    assert.ok(s.fetches.at(-1).includes("limit=200"), s.fetches.at(-1));
    assert.ok(!s.fetches.slice(-2).some((f) => f.includes("limit=500")), "learned once");
    assert.deepEqual(c.errors, []);
  } finally {
    c.close();
  }
});

test("hello's history_max_limit sets the page size of gap fills", async () => {
  const s = new FakeServer();
  s.limits = { max_frame_bytes: 65536, max_body_chars: 10000, history_max_limit: 2 };
  const c = client(s);
  try {
    await c.connect();
    await c.open("t1");
    s.dropPush.add(2);
    s.dropPush.add(3);
    s.dropPush.add(4);
    for (const b of ["1", "2", "3", "4", "5"]) s.post("t1", "sato", b);
    await until(() => c.got.length === 5, 3000, "gap filled in pages of 2");
    assert.deepEqual(seqs(c), [1, 2, 3, 4, 5]);
    const fills = s.fetches.filter((f) => f.includes("after_seq"));
    assert.ok(fills.length >= 2 && fills.every((f) => f.includes("limit=2")), fills.join(" "));
  } finally {
    c.close();
  }
});

test("a failed gap fill is retried with backoff without waiting for another message", async () => {
  const s = new FakeServer();
  const c = client(s);
  try {
    await c.connect();
    await c.open("t1");
    s.failFetches = 2;
    s.dropPush.add(2);
    for (const b of ["1", "2", "3"]) s.post("t1", "sato", b);
    await until(() => c.got.length === 3, 3000, "filled on a retry");
    assert.deepEqual(seqs(c), [1, 2, 3]);
    assert.deepEqual(c.errors.map((e) => e.code), ["network", "network"]);
  } finally {
    c.close();
  }
});

// ---------------------------------------------------------------- 7. connect races, timers

test("connect() and reconnectNow() while getToken is pending open one socket", async () => {
  const s = new FakeServer();
  let calls = 0;
  const getToken = () => new Promise((r) => { calls += 1; setTimeout(() => r(TOKEN), 20); });
  const c = client(s, new MemoryStorage(), { token: undefined, getToken });
  try {
    c.connect();
    c.reconnectNow();
    c.connect();
    await until(() => c.state === "open", 3000, "open");
    await pause(60);
    assert.equal(s.created, 1);
    assert.equal(s.sockets.size, 1);
    assert.equal(calls, 1);
    // close() while the token is fetched, then connect() again: one socket, the second one.
    for (const ws of s.sockets) ws._serverClose(1001);
    await until(() => c.retries.length === 1);
    c.reconnectNow();
    c.close();
    c.connect();
    await until(() => c.state === "open", 3000, "open again");
    await pause(60);
    assert.equal(s.created, 2);
    assert.equal(s.sockets.size, 1);
  } finally {
    c.close();
  }
});

test("a token valid for over 24.8 days does not make the refresh timer fire at once", async () => {
  const s = new FakeServer();
  s.userExp = Date.now() / 1000 + 40 * 86400;
  let calls = 0;
  const getToken = async () => {
    calls += 1;
    return TOKEN;
  };
  const delays = [];
  // As browsers do: a delay over 2^31 - 1 ms fires at once.
  const timers = {
    set: (f, ms) => {
      delays.push(ms);
      return setTimeout(f, ms > 2 ** 31 - 1 ? 0 : ms);
    },
    clear: (t) => clearTimeout(t),
  };
  const c = client(s, new MemoryStorage(), { token: undefined, getToken, timers });
  try {
    await c.connect();
    await pause(50);
    assert.equal(calls, 1, "no refresh");
    assert.ok(delays.every((ms) => ms <= MAX_TIMER_MS), delays.join(" "));
    assert.ok(delays.includes(MAX_TIMER_MS), "waits in steps");
  } finally {
    c.close();
  }
});

// ---------------------------------------------------------------- 8. runtime and types agree

test("send() returns the queued item with attempts; limits exist before hello; notification events", async () => {
  const s = new FakeServer();
  s.refuse = true;
  const c = client(s);
  try {
    assert.deepEqual(c.limits, {});
    c.connect();
    const item = c.send("t1", "hi");
    assert.equal(item.attempts, 0);
    assert.deepEqual(Object.keys(item).sort(), ["attempts", "body", "client_msg_id", "created_at", "thread"]);
    s.refuse = false;
    s.limits = { max_frame_bytes: 65536, max_body_chars: 10000, rate_per_s: 10, rate_burst: 30 };
    await until(() => c.state === "open" && c.pending().length === 0, 3000, "sent");
    assert.equal(c.limits.max_body_chars, 10000);
    const got = [];
    c.on("notification", (n) => got.push(n));
    const notification = { id: "n1", kind: "chat", title: "t", body: "b" };
    for (const ws of s.sockets) ws._push({ type: "notification", notification, unread: 3 });
    await until(() => got.length === 1);
    assert.deepEqual(got[0], { notification, unread: 3 });
  } finally {
    c.close();
  }
});

test("tsunagu.d.ts declares what the runtime gives", () => {
  const dts = readFileSync(new URL("../../chat/static/tsunagu.d.ts", import.meta.url), "utf8");
  const body = (name) => {
    const start = dts.indexOf(name);
    assert.ok(start >= 0, name);
    return dts.slice(start, dts.indexOf("\n}\n", start));
  };
  // Moderation.warning has the viewer's `text` (docs/protocol.md: {ja, en, text}).
  assert.match(body("export interface Moderation "), /warning\?: string \| \{[^}]*\btext\?: string/);
  // client.limits, which the widget reads.
  assert.match(body("export declare class TsunaguClient"), /readonly limits: Limits;/);
  assert.match(body("export interface Limits"), /max_frame_bytes\?: number/);
  // The notification event is {notification, unread}.
  assert.match(body("export interface ClientEvents"), /notification: \{ notification: Notification; unread: number \}/);
  // send() returns the queued item (attempts included) or the refused one with its error.
  assert.match(body("export declare class TsunaguClient"), /send\([^)]*\): OutboxItem & \{ error\?: TsunaguError \};/);
  assert.match(body("export interface OutboxItem"), /attempts: number;/);
  // Every runtime export is declared.
  const SOURCE = readFileSync(new URL("../../chat/static/tsunagu.js", import.meta.url), "utf8");
  for (const [, name] of SOURCE.matchAll(/^export (?:const|function|class) ([A-Za-z_]+)/gm)) {
    assert.match(dts, new RegExp(`export declare (const|function|class) ${name}\\b`), name);
  }
});
