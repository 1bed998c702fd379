// The moderator console's pure helpers (console.js loads without a DOM for these).
import { test } from "node:test";
import assert from "node:assert/strict";
import { TEXTS, errorText, errorDetail, consoleTimeZone, prependLogPage, logMissesItem } from "../../chat/static/console.js";

const jwt = (claims) => `x.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.y`;

test("console errors are shown by code in ja and en, never with the server's English", () => {
  assert.deepEqual(Object.keys(TEXTS.ja.errors).sort(), Object.keys(TEXTS.en.errors).sort());
  assert.deepEqual(Object.keys(TEXTS.ja).sort(), Object.keys(TEXTS.en).sort());
  const raw = { code: "conflict", message: "this item has already been decided", status: 409 };
  assert.match(errorText(raw, "ja"), /状態が変わった/u);
  assert.match(errorText(raw, "en"), /no longer possible/);
  for (const locale of ["ja", "en"]) {
    for (const code of Object.keys(TEXTS[locale].errors)) {
      const text = errorText({ code, message: "raw English message", retry_after: 2 }, locale);
      assert.doesNotMatch(text, /raw English message/);
      if (code !== "generic") assert.notEqual(text, TEXTS[locale].errors.generic, `${locale} ${code}`);
    }
  }
  assert.match(errorText({ code: "rate_limited", retry_after: 2.5 }, "ja"), /3秒/u);
  assert.equal(errorText({ code: "http_502" }, "ja"), TEXTS.ja.errors.unavailable);
  assert.equal(errorText({ code: "http_409" }, "en"), TEXTS.en.errors.conflict);
  assert.equal(errorText({ code: "mystery" }, "ja"), TEXTS.ja.errors.generic);
  assert.equal(errorText(new TypeError("boom"), "en"), TEXTS.en.errors.generic);
  assert.equal(errorDetail(raw), "conflict: this item has already been decided");
  assert.equal(errorDetail(null), "");
});

test("the console's time zone is the token's when valid, else Asia/Tokyo", () => {
  assert.equal(consoleTimeZone(jwt({ sub: "m", tz: "America/New_York" })), "America/New_York");
  assert.equal(consoleTimeZone(jwt({ sub: "m", tz: "UTC+9" })), "Asia/Tokyo");
  assert.equal(consoleTimeZone(jwt({ sub: "m" })), "Asia/Tokyo");
  assert.equal(consoleTimeZone("not a token"), "Asia/Tokyo");
});

test("thread log pages: earlier pages go in front once; an ignored before_seq is noticed", () => {
  const m = (seq) => ({ id: `m_${seq}`, seq });
  const log = [m(5), m(6), m(7)];
  assert.deepEqual(prependLogPage(log, [m(3), m(4)], 5).map((x) => x.seq), [3, 4, 5, 6, 7]);
  assert.deepEqual(prependLogPage(log, [m(4), m(3)], 5).map((x) => x.seq), [3, 4, 5, 6, 7]);
  assert.deepEqual(prependLogPage(log, [], 5).map((x) => x.seq), [5, 6, 7]);
  // The server sent its latest page again (it does not know before_seq).
  assert.equal(prependLogPage(log, [m(6), m(7)], 5), null);
  assert.equal(logMissesItem(log, { message_id: "m_2" }), true);
  assert.equal(logMissesItem(log, { message_id: "m_6" }), false);
  assert.equal(logMissesItem(log, { message_id: null }), false); // a held message: not stored
  assert.equal(logMissesItem([m(1), m(2)], { message_id: "m_9" }), false); // the whole thread
  assert.equal(logMissesItem([], { message_id: "m_1" }), false);
});
