// Unit tests of the SDK's pure parts: backoff, seq/gap decisions, the outbox.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  backoffCeiling, backoffDelay, classifySeq, missingRange, SeqTracker, Outbox,
  outboxAdd, outboxRemove, outboxNext, outboxDefer, outboxMarkAttempt, outboxParse,
  outboxWakeAt, outboxMerge, reconnectDelay, sendSizeProblem, frameBytes, historyLimitFromError,
  mergeMessage, tokenClaims, wsUrl, newClientMsgId,
} from "../../chat/static/tsunagu.js";

test("backoff ceiling doubles from base and stops at cap", () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((n) => backoffCeiling(n, 500, 30000)), [500, 1000, 2000, 4000, 8000]);
  assert.equal(backoffCeiling(10, 500, 30000), 30000);
  assert.equal(backoffCeiling(1000, 500, 30000), 30000);
  assert.equal(backoffCeiling(-3, 500, 30000), 500);
});

test("full jitter spans [0, ceiling) and uses the random source", () => {
  assert.equal(backoffDelay(3, { base: 500, cap: 30000 }, () => 0), 0);
  assert.equal(backoffDelay(3, { base: 500, cap: 30000 }, () => 0.5), 2000);
  assert.equal(backoffDelay(3, { base: 500, cap: 30000 }, () => 0.999999), 3999);
  assert.equal(backoffDelay(20, { base: 500, cap: 30000 }, () => 0.999999), 29999);
  for (let n = 0; n < 12; n += 1) {
    for (let i = 0; i < 200; i += 1) {
      const d = backoffDelay(n);
      assert.ok(d >= 0 && d < backoffCeiling(n), `attempt ${n}: ${d}`);
    }
  }
  // Full jitter (not "equal" jitter): small delays occur even at high attempts.
  const low = Array.from({ length: 500 }, () => backoffDelay(8)).filter((d) => d < backoffCeiling(8) / 4);
  assert.ok(low.length > 50, `expected delays in the lowest quarter, got ${low.length}/500`);
});

test("seq classification and missing range", () => {
  assert.equal(classifySeq(5, 3), "duplicate");
  assert.equal(classifySeq(5, 5), "duplicate");
  assert.equal(classifySeq(5, 6), "next");
  assert.equal(classifySeq(5, 9), "gap");
  assert.deepEqual(missingRange(5, 9), { from: 6, to: 8 });
  assert.equal(missingRange(5, 6), null);
});

const m = (seq, thread = "t1") => ({ id: `m${seq}`, thread, seq, body: `b${seq}` });

test("tracker delivers in order, drops duplicates, holds back after a gap", () => {
  const t = new SeqTracker({ t1: 2 });
  assert.deepEqual(t.accept(m(3)).deliver.map((x) => x.seq), [3]);
  assert.equal(t.accept(m(3)).duplicate, true);
  const g = t.accept(m(6));
  assert.deepEqual(g.deliver, []);
  assert.deepEqual(g.gap, { from: 4, to: 5 });
  assert.deepEqual(t.pendingGap("t1"), { from: 4, to: 5 });
  assert.deepEqual(t.accept(m(5)).deliver, []);
  assert.deepEqual(t.accept(m(4)).deliver.map((x) => x.seq), [4, 5, 6]);
  assert.equal(t.pendingGap("t1"), null);
  assert.equal(t.last("t1"), 6);
  assert.deepEqual(t.resumeMap(), { t1: 6 });
});

test("tracker: untracked threads pass through, track() never moves backwards", () => {
  const t = new SeqTracker();
  assert.deepEqual(t.accept(m(7, "x")).deliver.map((x) => x.seq), [7]);
  assert.equal(t.isTracked("x"), false);
  t.track("x", 7);
  t.track("x", 3);
  assert.equal(t.last("x"), 7);
});

test("tracker: random arrival orders with duplicates deliver 1..n exactly once", () => {
  for (let round = 0; round < 200; round += 1) {
    const n = 1 + Math.floor(Math.random() * 30);
    const arrivals = [];
    for (let s = 1; s <= n; s += 1) {
      arrivals.push(m(s));
      if (Math.random() < 0.3) arrivals.push(m(s));
    }
    arrivals.sort(() => Math.random() - 0.5);
    const t = new SeqTracker({ t1: 0 });
    const got = [];
    for (const a of arrivals) got.push(...t.accept(a).deliver.map((x) => x.seq));
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => i + 1));
  }
});

class MemoryStorage {
  constructor() { this.data = new Map(); }
  getItem(k) { return this.data.has(k) ? this.data.get(k) : null; }
  setItem(k, v) { this.data.set(k, String(v)); }
  removeItem(k) { this.data.delete(k); }
}

test("outbox operations keep order and client_msg_id", () => {
  let items = [];
  items = outboxAdd(items, { client_msg_id: "a", thread: "t", body: "1" });
  items = outboxAdd(items, { client_msg_id: "b", thread: "t", body: "2" });
  items = outboxAdd(items, { client_msg_id: "a", thread: "t", body: "changed" });
  assert.deepEqual(items.map((i) => [i.client_msg_id, i.body]), [["a", "1"], ["b", "2"]]);
  items = outboxMarkAttempt(items, "a", 10);
  assert.equal(items[0].attempts, 1);
  assert.equal(outboxNext(items, 0).client_msg_id, "a");
  items = outboxDefer(items, "a", 100);
  assert.equal(outboxNext(items, 100).client_msg_id, "a");
  items = outboxRemove(items, "a");
  assert.deepEqual(items.map((i) => i.client_msg_id), ["b"]);
});

test("a deferred item holds back the rest of its thread, not other threads", () => {
  let items = [];
  for (const [id, thread] of [["a1", "a"], ["a2", "a"], ["b1", "b"], ["a3", "a"], ["b2", "b"]]) {
    items = outboxAdd(items, { client_msg_id: id, thread, body: id });
  }
  items = outboxDefer(items, "a1", 100); // rate_limited or unavailable
  // a2 and a3 must not overtake a1; thread b goes on.
  assert.equal(outboxNext(items, 50).client_msg_id, "b1");
  items = outboxRemove(items, "b1");
  assert.equal(outboxNext(items, 50).client_msg_id, "b2");
  items = outboxRemove(items, "b2");
  assert.equal(outboxNext(items, 50), null);
  assert.equal(outboxWakeAt(items, 50), 100);
  assert.equal(outboxNext(items, 100).client_msg_id, "a1");
  // A deferred item later in its thread does not set the wake time: its head goes first.
  items = outboxDefer(outboxRemove(items, "a1"), "a3", 500);
  assert.equal(outboxNext(items, 100).client_msg_id, "a2");
  assert.equal(outboxWakeAt(items, 100), null);
  // The failure count of transient errors is kept with the item (for the backoff).
  items = outboxDefer(items, "a2", 200, { failed: true });
  items = outboxDefer(items, "a2", 300, { failed: true });
  assert.equal(items.find((i) => i.client_msg_id === "a2").failures, 2);
});

test("outbox persists across instances and survives garbage", () => {
  const storage = new MemoryStorage();
  const a = new Outbox(storage, "k");
  a.add({ client_msg_id: "c1", thread: "t", body: "こんにちは", created_at: "x" });
  a.add({ client_msg_id: "c2", thread: "t", body: "two", created_at: "x" });
  a.release(); // the page goes away (pagehide)
  const b = new Outbox(storage, "k");
  assert.deepEqual(b.items.map((i) => i.client_msg_id), ["c1", "c2"]);
  b.remove("c1");
  b.remove("c2");
  assert.equal(storage.getItem("k"), null);
  storage.setItem("k", "{not json");
  assert.deepEqual(new Outbox(storage, "k").items, []);
  assert.deepEqual(outboxParse('[{"client_msg_id": 3}, {"client_msg_id":"x","thread":"t","body":"b"}]').length, 1);
});

test("outbox rekey merges the anonymous outbox into the user's", () => {
  const storage = new MemoryStorage();
  const user = new Outbox(storage, "user");
  user.add({ client_msg_id: "old", thread: "t", body: "old" });
  user.release();
  const o = new Outbox(storage, "anon");
  o.add({ client_msg_id: "new", thread: "t", body: "new" });
  o.rekey("user");
  assert.deepEqual(o.items.map((i) => i.client_msg_id), ["old", "new"]);
  o.release();
  assert.deepEqual(new Outbox(storage, "user").items.map((i) => i.client_msg_id), ["old", "new"]);
});

test("two tabs on one stored outbox never wipe each other's unsent messages", () => {
  const storage = new MemoryStorage();
  const key = "tsunagu.outbox:chat.test:me";
  const a = new Outbox(storage, key);
  const b = new Outbox(storage, key);
  a.add({ client_msg_id: "a1", thread: "t", body: "from tab A" });
  b.add({ client_msg_id: "b1", thread: "t", body: "from tab B" });
  a.add({ client_msg_id: "a2", thread: "t", body: "from tab A again" });
  const stored = () => outboxParse(storage.getItem(key)).map((i) => i.client_msg_id).sort();
  assert.deepEqual(stored(), ["a1", "a2", "b1"]);
  a.remove("a1"); // sent by A: only A's item goes
  assert.deepEqual(stored(), ["a2", "b1"]);
  b.attempt("b1");
  assert.deepEqual(stored(), ["a2", "b1"]);
  // Each tab sends its own; a page opened now leaves the live tabs' items alone.
  assert.deepEqual(a.items.map((i) => i.client_msg_id), ["a2"]);
  assert.deepEqual(b.items.map((i) => i.client_msg_id), ["b1"]);
  const c = new Outbox(storage, key);
  assert.deepEqual(c.items, []);
  // A goes away: C adopts its item at the next sync.
  a.release();
  assert.equal(c.sync(), true);
  assert.deepEqual(c.items.map((i) => i.client_msg_id), ["a2"]);
  // C sends a2: A forgets it at its next read (tombstone) instead of writing it back.
  c.remove("a2");
  assert.equal(a.sync(), true);
  assert.deepEqual(a.items, []);
  a.save();
  assert.deepEqual(stored(), ["b1"]);
  // A tab that goes away releases its items; another tab adopts them on its next sync.
  b.release();
  const d = new Outbox(null);
  assert.equal(d.sync(), false);
  const e = new Outbox(storage, "other-key");
  e.rekey(key); // loads (adopts) everything stored under the user's key
  assert.deepEqual(e.items.map((i) => i.client_msg_id), ["b1"]);
  assert.equal(outboxParse(storage.getItem(key))[0].owner, e.owner);
});

test("a released item is adopted by a live tab's sync; own new items survive a failed write", () => {
  const storage = new MemoryStorage();
  const a = new Outbox(storage, "k");
  const b = new Outbox(storage, "k");
  a.add({ client_msg_id: "x", thread: "t", body: "x" });
  assert.equal(b.sync(), false, "A's live item is A's");
  a.release();
  assert.equal(b.sync(), true);
  assert.deepEqual(b.items.map((i) => i.client_msg_id), ["x"]);
  assert.equal(outboxParse(storage.getItem("k"))[0].owner, b.owner);
  // outboxMerge on its own: another tab's stored item stays, a removed one goes, a new one is added.
  const merged = outboxMerge(
    [{ client_msg_id: "o", thread: "t", body: "o", owner: "other" }, { client_msg_id: "r", thread: "t", body: "r", owner: "me" }],
    [{ client_msg_id: "r", thread: "t", body: "r" }, { client_msg_id: "n", thread: "t", body: "n" }, { client_msg_id: "gone", thread: "t", body: "g" }],
    { owner: "me", removed: new Set(["r"]), sent: new Set(["gone"]) },
  );
  assert.deepEqual(merged.write.map((i) => [i.client_msg_id, i.owner]), [["o", "other"], ["n", "me"]]);
  assert.deepEqual(merged.items.map((i) => i.client_msg_id), ["n"]);
});

test("a new tab leaves a live tab's unsent items alone; it adopts them once the heartbeat is stale", () => {
  const storage = new MemoryStorage();
  let t = 1000000;
  const now = () => t;
  const ids = (o) => o.items.map((i) => i.client_msg_id);
  const owners = () => outboxParse(storage.getItem("k")).map((i) => i.owner);
  const a = new Outbox(storage, "k", { now, heartbeat: 0 }); // 0: no timer (beats on writes)
  a.add({ client_msg_id: "x", thread: "t", body: "from A" });
  const b = new Outbox(storage, "k", { now, heartbeat: 0 });
  assert.deepEqual(ids(b), [], "A lives: x stays A's, only A sends it");
  assert.deepEqual(owners(), [a.owner]);
  assert.deepEqual(ids(a), ["x"]);
  t += 10000;
  a.beat();
  t += 10000;
  assert.equal(b.sync(), false, "A's heartbeat is fresh");
  assert.deepEqual(owners(), [a.owner]);
  t += 6000; // A's last beat is 16 s old (3 periods of 5 s): A crashed or froze
  assert.equal(b.sync(), true);
  assert.deepEqual(ids(b), ["x"]);
  assert.deepEqual(owners(), [b.owner]);
  // A wakes up: it gives x up to the live B instead of sending it too.
  a.beat();
  assert.equal(a.sync(), true);
  assert.deepEqual(ids(a), []);
  a.save();
  assert.deepEqual(owners(), [b.owner]);
  // pagehide clears the heartbeat: a page opened next takes over at once.
  b.release();
  assert.equal(storage.getItem(b.aliveKey), null);
  assert.deepEqual(owners(), [null]);
  assert.deepEqual(ids(new Outbox(storage, "k", { now, heartbeat: 0 })), ["x"]);
});

test("an item missing from storage after another tab's stale write is kept and written back", () => {
  const storage = new MemoryStorage();
  const ids = (o) => o.items.map((i) => i.client_msg_id);
  const stored = () => outboxParse(storage.getItem("k")).map((i) => i.client_msg_id).sort();
  // A storage whose reads of some keys return old copies (another process's view).
  const staleView = (copies) => ({
    getItem: (k) => (k in copies ? copies[k] : storage.getItem(k)),
    setItem: (k, v) => storage.setItem(k, v),
    removeItem: (k) => storage.removeItem(k),
  });
  const a = new Outbox(storage, "k");
  a.add({ client_msg_id: "x", thread: "t", body: "from A" });
  const old = storage.getItem("k");
  const b = new Outbox(storage, "k");
  b.add({ client_msg_id: "y", thread: "t", body: "from B" });
  assert.equal(b.sync(), false);
  assert.deepEqual(stored(), ["x", "y"]);
  // A writes from the copy it read before B queued y: y is gone from storage.
  a.storage = staleView({ k: old });
  a.add({ client_msg_id: "z", thread: "t", body: "from A again" });
  a.storage = storage;
  assert.deepEqual(stored(), ["x", "z"]);
  // B was not told y was sent (no tombstone): it keeps y and puts it back.
  b.sync();
  assert.deepEqual(ids(b), ["y"]);
  assert.deepEqual(stored(), ["x", "y", "z"]);
  // A sends x; B writes from a copy that still has it: the tombstone keeps x out.
  const before = { k: storage.getItem("k"), [a.sentKey]: storage.getItem(a.sentKey) };
  a.remove("x");
  assert.deepEqual(stored(), ["y", "z"]);
  assert.ok(JSON.parse(storage.getItem(a.sentKey)).x > 0, "tombstone stored");
  b.storage = staleView(before);
  b.attempt("y");
  b.storage = storage;
  assert.deepEqual(stored(), ["x", "y", "z"], "x written back from the stale copy");
  assert.equal(a.sync(), false);
  assert.deepEqual(stored(), ["y", "z"], "the tombstoned x purged");
  assert.deepEqual(ids(a), ["z"]);
  a.release();
  b.release();
  assert.deepEqual(ids(new Outbox(storage, "k")).sort(), ["y", "z"]);
});

test("reconnect delays by close code: 4029 starts from a larger base, 1011/4008 never from 0", () => {
  const top = () => 0.999999;
  const b = { base: 500, cap: 30000, crowdedBase: 5000 };
  assert.equal(reconnectDelay(1006, 0, b, top), 499);
  assert.equal(reconnectDelay(undefined, 2, b, top), 1999);
  assert.equal(reconnectDelay(4029, 0, b, top), 4999);
  assert.equal(reconnectDelay(4029, 1, b, top), 9999);
  assert.equal(reconnectDelay(4029, 9, b, top), 29999);
  assert.equal(reconnectDelay(1011, 0, b, top), 999);
  assert.equal(reconnectDelay(4008, 0, b, top), 999);
  assert.equal(reconnectDelay(1011, 3, b, top), 3999);
  assert.equal(reconnectDelay(4029, 0, b, () => 0), 0, "full jitter");
});

test("a send is measured against hello's limits: body in code points, frame in UTF-8 bytes", () => {
  const item = (body) => ({ client_msg_id: "c-1", thread: "t1", body });
  assert.equal(sendSizeProblem(item("😀".repeat(40)), { max_body_chars: 40 }), null, "an emoji is one character");
  const long = sendSizeProblem(item("あ".repeat(41)), { max_body_chars: 40 });
  assert.deepEqual([long.code, long.limit, long.size], ["bad_frame", 40, 41]);
  assert.match(long.message, /longer than 40 characters/, "the server's own words");
  // Without max_body_chars the body is not judged; the frame is, against 64 KiB by default.
  assert.equal(sendSizeProblem(item("a".repeat(20000)), {}), null);
  const big = sendSizeProblem(item("あ".repeat(22000)), {});
  assert.deepEqual([big.code, big.limit], ["too_large", 65536]);
  assert.ok(big.size > 65536);
  assert.equal(sendSizeProblem(item("\u0001".repeat(400)), { max_frame_bytes: 2048 }).code, "too_large", "escaped in JSON");
  assert.equal(frameBytes({ body: "あ" }), '{"body":"あ"}'.length + 2);
});

test("the history page limit is read from a 400 that names it", () => {
  const err = (status, message) => Object.assign(new Error(message), { status });
  assert.equal(historyLimitFromError(err(400, "query parameter 'limit' must be between 1 and 200")), 200);
  assert.equal(historyLimitFromError(err(400, "query parameter 'after_seq' must be an integer")), null);
  assert.equal(historyLimitFromError(err(429, "query parameter 'limit' must be between 1 and 200")), null);
  assert.equal(historyLimitFromError(null), null);
});

test("mergeMessage keeps seq order and replaces by id", () => {
  let list = [];
  for (const s of [3, 1, 2]) list = mergeMessage(list, m(s));
  assert.deepEqual(list.map((x) => x.seq), [1, 2, 3]);
  list = mergeMessage(list, { ...m(2), body: "edited" });
  assert.deepEqual(list.map((x) => x.body), ["b1", "edited", "b3"]);
});

test("mergeMessage never lets an older copy replace a newer one", () => {
  // an edit (rev 1) arrives live, then a history page read before it (rev 0): kept edited
  let list = [m(1), { ...m(2), body: "edited", rev: 1, edited_at: "2026-12-07T10:00:00Z" }];
  const stale = mergeMessage(list, m(2));
  assert.equal(stale, list, "the list is unchanged");
  assert.equal(stale[1].body, "edited");
  // a deletion (rev 2) is not undone by the rev-1 copy a retried send may be answered with
  list = mergeMessage(list, { ...m(2), body: "", deleted: true, rev: 2 });
  list = mergeMessage(list, { ...m(2), body: "edited", rev: 1 });
  assert.equal(list[1].deleted, true);
  // same rev: the newer arrival wins (a thanks count), a higher rev always does
  list = mergeMessage(list, { ...m(2), body: "", deleted: true, rev: 2, thanks: 1 });
  assert.equal(list[1].thanks, 1);
  list = mergeMessage([m(1), m(2)], { ...m(2), body: "v1", rev: 1 });
  assert.deepEqual(list.map((x) => x.body), ["b1", "v1"]);
});

test("token claims, ws url and ids", () => {
  const payload = Buffer.from(JSON.stringify({ sub: "tanaka", name: "田中" })).toString("base64url");
  assert.deepEqual(tokenClaims(`h.${payload}.s`), { sub: "tanaka", name: "田中" });
  assert.deepEqual(tokenClaims("garbage"), {});
  assert.equal(wsUrl("http://127.0.0.1:8080/x"), "ws://127.0.0.1:8080/v1/ws");
  assert.equal(wsUrl("https://chat.example.jp"), "wss://chat.example.jp/v1/ws");
  assert.notEqual(newClientMsgId(), newClientMsgId());
});

import { highlightSegments, sortQueue, precisionRows, fragmentParams } from "../../chat/static/console.js";

test("console: finding spans count code points, not UTF-16 units", () => {
  const text = "😀 連絡は tanaka@example.com まで";
  const start = Array.from(text).indexOf("t");
  const segs = highlightSegments(text, [{ category: "contact_exchange", rule: "email", start, end: start + 18 }]);
  assert.deepEqual(segs.map((s) => [s.text, s.findings.length]), [["😀 連絡は ", 0], ["tanaka@example.com", 1], [" まで", 0]]);
  assert.equal(segs.map((s) => s.text).join(""), text);
  const overlap = highlightSegments("abcdef", [{ start: 1, end: 4 }, { start: 3, end: 6 }, { start: 9, end: 12 }]);
  assert.deepEqual(overlap.map((s) => [s.text, s.findings.length]), [["a", 0], ["bc", 1], ["d", 2], ["ef", 1]]);
});

test("console: queue by risk then age; precision worst first", () => {
  const q = sortQueue([{ id: "a", risk: 0.2, created_at: "1" }, { id: "b", risk: 0.9, created_at: "2" }, { id: "c", risk: 0.9, created_at: "1" }]);
  assert.deepEqual(q.map((i) => i.id), ["c", "b", "a"]);
  const rows = precisionRows([{ rule: "x", confirmed: 9, dismissed: 1 }, { rule: "y", confirmed: 1, dismissed: 3 }, { rule: "z", confirmed: 0, dismissed: 0 }]);
  assert.deepEqual(rows.map((r) => [r.rule, r.precision]), [["y", 0.25], ["x", 0.9], ["z", null]]);
  assert.deepEqual(fragmentParams("#token=a.b.c&locale=en"), { token: "a.b.c", locale: "en" });
});

import { ownFindings, riskPercent } from "../../chat/static/console.js";

test("console: own findings are those of the highest message index; risk is clamped", () => {
  const f = [{ rule: "a", message_index: 1 }, { rule: "b", message_index: 2 }, { rule: "c", message_index: 2 }];
  assert.deepEqual(ownFindings(f).map((x) => x.rule), ["b", "c"]);
  assert.deepEqual(ownFindings([{ rule: "x" }]).map((x) => x.rule), ["x"]);
  assert.equal(riskPercent(70), 70);
  assert.equal(riskPercent(150), 100);
  assert.equal(riskPercent(undefined), 0);
});
