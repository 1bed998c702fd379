// The widget's pure helpers for the composer's limits, the time zone and the list's order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bodyFit, timeline, validTimeZone, DEFAULT_LIMITS, DEFAULT_TZ, TEXTS } from "../../chat/static/tsunagu-chat.js";

test("a body is measured against hello's limits in code points, and the frame in bytes", () => {
  assert.deepEqual(DEFAULT_LIMITS, { max_body_chars: 10000, max_frame_bytes: 65536 });
  const limits = { max_body_chars: 40, max_frame_bytes: 65536 };
  assert.equal(bodyFit("あ".repeat(40), limits).over, false);
  assert.equal(bodyFit("あ".repeat(41), limits).over, true);
  // An emoji is one character for the server (Python), two UTF-16 units for the browser.
  const emoji = bodyFit("😀".repeat(40), limits);
  assert.equal(emoji.chars, 40);
  assert.equal(emoji.over, false);
  assert.equal(bodyFit("x", limits).max, 40);
  // Without limits (before hello) the server's defaults apply.
  assert.equal(bodyFit("a".repeat(10000)).over, false);
  assert.equal(bodyFit("a".repeat(10001)).over, true);
  assert.equal(bodyFit("a".repeat(10001), {}).max, 10000);
  // A frame over max_frame_bytes closes the socket (1009): refused even under the characters.
  assert.equal(bodyFit("あ".repeat(30000), { max_body_chars: 100000, max_frame_bytes: 65536 }).tooBig, true);
  assert.equal(bodyFit("\u0001".repeat(11000), { max_body_chars: 100000 }).tooBig, true); // \u0001 in JSON
  assert.equal(bodyFit("a".repeat(1000)).tooBig, false);
  assert.match(TEXTS.ja.counter(9000, 10000), /9000 \/ 10000文字/u);
  assert.match(TEXTS.en.counter(9000, 10000), /9000 \/ 10000 characters/);
});

test("a time zone that Intl does not know falls back to Asia/Tokyo", () => {
  assert.equal(DEFAULT_TZ, "Asia/Tokyo");
  assert.equal(validTimeZone("UTC+9"), "Asia/Tokyo");
  assert.equal(validTimeZone("Mars/Olympus_Mons"), "Asia/Tokyo");
  assert.equal(validTimeZone(""), "Asia/Tokyo");
  assert.equal(validTimeZone(undefined), "Asia/Tokyo");
  assert.equal(validTimeZone(42), "Asia/Tokyo");
  assert.equal(validTimeZone("America/New_York"), "America/New_York");
  assert.equal(validTimeZone("Europe/Berlin", "UTC"), "Europe/Berlin");
  assert.equal(validTimeZone("nope", "UTC"), "UTC");
  // What the widget does with it: formatting never throws.
  assert.doesNotThrow(() => new Intl.DateTimeFormat("ja-JP", { timeZone: validTimeZone("UTC+9") }).format(new Date()));
});

const dayKey = (d) => d.toISOString().slice(0, 10); // UTC days, for the test
const msg = (seq, at, extra = {}) => ({ id: `m${seq}`, seq, created_at: at, kind: "user", body: `b${seq}`, ...extra });
const shape = (entries) => entries.map((e) => (e.type === "day" ? `day ${e.key}`
  : e.type === "message" ? `msg ${e.message.seq}` : `local ${e.local.key}`));

test("local rows go where they were written, with each day's separator once", () => {
  const messages = [
    msg(1, "2026-11-22T09:00:00Z"),
    msg(2, "2026-11-23T09:00:00Z"),
    msg(3, "2026-11-23T10:00:00Z"),
  ];
  // An unsent message written yesterday (offline), and one written now.
  const locals = [
    { key: "c-now", client_msg_id: "c-now", at: new Date("2026-11-23T11:00:00Z") },
    { key: "c-old", client_msg_id: "c-old", at: new Date("2026-11-22T20:00:00Z") },
  ];
  const out = timeline(messages, locals, dayKey);
  assert.deepEqual(shape(out), [
    "day 2026-11-22", "msg 1", "local c-old",
    "day 2026-11-23", "msg 2", "msg 3", "local c-now",
  ]);
  const keys = out.filter((e) => e.type === "day").map((e) => e.key);
  assert.equal(new Set(keys).size, keys.length);
});

test("an unsent row disappears once its message is in the list (push before ok)", () => {
  const messages = [msg(1, "2026-11-23T09:00:00Z"), msg(2, "2026-11-23T09:01:00Z", { client_msg_id: "c-2" })];
  const locals = [
    { key: "c-2", client_msg_id: "c-2", at: new Date("2026-11-23T09:00:59Z") },
    { key: "c-3", client_msg_id: "c-3", at: new Date("2026-11-23T09:02:00Z") },
  ];
  assert.deepEqual(shape(timeline(messages, locals, dayKey)), ["day 2026-11-23", "msg 1", "msg 2", "local c-3"]);
});

test("local rows of the same time keep their order; no messages, only locals", () => {
  const at = new Date("2026-11-23T09:00:00Z");
  const locals = [{ key: "a", at }, { key: "b", at }, { key: "c", at: new Date("2026-11-23T08:00:00Z") }];
  assert.deepEqual(shape(timeline([], locals, dayKey)), ["day 2026-11-23", "local c", "local a", "local b"]);
  // A clock going backwards across days never repeats a separator (keys stay unique).
  const skew = [msg(1, "2026-11-23T09:00:00Z"), msg(2, "2026-11-22T23:59:00Z"), msg(3, "2026-11-23T09:05:00Z")];
  const days = timeline(skew, [], dayKey).filter((e) => e.type === "day").map((e) => e.key);
  assert.deepEqual(days, ["2026-11-23", "2026-11-22"]);
});
