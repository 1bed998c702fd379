// Unit tests of the SDK's pure parts: backoff, seq/gap decisions, the outbox.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  backoffCeiling, backoffDelay, classifySeq, missingRange, SeqTracker, Outbox,
  outboxAdd, outboxRemove, outboxNext, outboxDefer, outboxMarkAttempt, outboxParse,
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
  assert.equal(outboxNext(items, 50).client_msg_id, "b");
  assert.equal(outboxNext(items, 100).client_msg_id, "a");
  items = outboxRemove(items, "a");
  assert.deepEqual(items.map((i) => i.client_msg_id), ["b"]);
});

test("outbox persists across instances and survives garbage", () => {
  const storage = new MemoryStorage();
  const a = new Outbox(storage, "k");
  a.add({ client_msg_id: "c1", thread: "t", body: "こんにちは", created_at: "x" });
  a.add({ client_msg_id: "c2", thread: "t", body: "two", created_at: "x" });
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
  const o = new Outbox(storage, "anon");
  o.add({ client_msg_id: "new", thread: "t", body: "new" });
  o.rekey("user");
  assert.deepEqual(o.items.map((i) => i.client_msg_id), ["old", "new"]);
  assert.deepEqual(new Outbox(storage, "user").items.map((i) => i.client_msg_id), ["old", "new"]);
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
