// The moderator console's pure helpers (console.js loads without a DOM for these).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  TEXTS, errorText, errorDetail, consoleTimeZone, prependLogPage, logMissesItem, ownFindings, earlierPieces,
  findingRules, claimRoles, isHeld, decisionOptions, mayClaim, queuePath, defaultFilter, highlightSegments, DECISIONS,
} from "../../chat/static/console.js";

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

const offered = (item, roles) => decisionOptions(item, roles).filter((o) => !o.disabled).map((o) => o.decision);

test("decisions offered follow the item's state and the token's roles", () => {
  assert.ok(DECISIONS.includes("reject"));
  const held = { status: "open", action: "hold", withheld_id: "w_1" };
  const flagged = { status: "open", action: "flag", withheld_id: null, message_id: "m_1" };
  const blocked = { status: "open", action: "block", withheld_id: "w_2" };
  assert.deepEqual(offered(held, ["moderator"]), ["dismiss", "warn", "restrict", "release", "reject", "escalate"]);
  assert.deepEqual(offered(flagged, ["moderator"]), ["dismiss", "warn", "restrict", "escalate"]);
  assert.deepEqual(offered(blocked, ["moderator"]), ["dismiss", "warn", "restrict", "escalate"]);
  // Escalated: moderators get 403, dispute staff and admins decide (but not escalate again).
  const esc = { ...held, status: "escalated", escalated_by: "yamamoto" };
  assert.deepEqual(offered(esc, ["moderator"]), []);
  assert.equal(decisionOptions(esc, ["moderator"])[0].reason, "escalatedOnly");
  assert.deepEqual(offered(esc, ["dispute"]), ["dismiss", "warn", "restrict", "release", "reject"]);
  assert.deepEqual(offered(esc, ["admin"]), ["dismiss", "warn", "restrict", "release", "reject"]);
  assert.equal(decisionOptions(esc, ["dispute"]).find((o) => o.decision === "escalate").reason, "alreadyEscalated");
  assert.deepEqual(offered({ ...held, status: "decided" }, ["admin"]), []);
  for (const o of decisionOptions(esc, ["moderator"])) assert.equal(typeof TEXTS.ja[o.reason], "string");
  assert.equal(isHeld(held), true);
  assert.equal(isHeld(blocked), false);
  assert.equal(isHeld(flagged), false);
  assert.equal(mayClaim(esc, ["moderator"]), false);
  assert.equal(mayClaim(esc, ["dispute"]), true);
  assert.equal(mayClaim(held, ["moderator"]), true);
  assert.equal(mayClaim(held, ["dispute"]), false);
});

test("roles from the token's claims; the queue's status filter", () => {
  assert.deepEqual(claimRoles({ roles: ["moderator", "dispute"] }), ["moderator", "dispute"]);
  assert.deepEqual(claimRoles({ roles: "admin" }), ["admin"]);
  assert.deepEqual(claimRoles({}), []);
  assert.equal(queuePath(""), "/v1/moderation/queue");
  assert.equal(queuePath("escalated"), "/v1/moderation/queue?status=escalated");
  assert.equal(queuePath("bogus"), "/v1/moderation/queue");
  assert.equal(defaultFilter(["dispute"]), "escalated");
  assert.equal(defaultFilter(["dispute", "moderator"]), "");
  for (const key of ["", "open", "claimed", "escalated", "decided"]) {
    assert.equal(typeof TEXTS.ja.filters[key], "string");
    assert.equal(typeof TEXTS.en.filters[key], "string");
  }
  assert.ok(TEXTS.ja.statuses.escalated && TEXTS.en.statuses.escalated);
  assert.ok(TEXTS.ja.decisions.reject && TEXTS.en.decisions.reject);
});

test("earlier pieces of a split finding keep their own spans, never the current message's", () => {
  const item = {
    text: "😀 の 5678",
    findings: [
      { rule: "contact.phone", start: 4, end: 8, message_index: 2, current: true },
      { rule: "contact.phone", start: 4, end: 8, message_index: 0, current: false, message_id: "m_a" },
      { rule: "contact.phone", start: 1, end: 4, message_index: 1, current: false, message_id: null },
      { rule: "contact.email", start: 0, end: 2, message_index: 2, current: true },
    ],
    earlier_messages: [
      { message_index: 1, message_id: null, text: "🎉090-" },
      { message_index: 0, message_id: "m_a", text: "番号は 1234" },
    ],
  };
  assert.deepEqual(ownFindings(item.findings).map((f) => f.start), [4, 0]);
  const pieces = earlierPieces(item);
  assert.deepEqual(pieces.map((p) => p.message_index), [0, 1]);
  assert.deepEqual(pieces.map((p) => p.findings.length), [1, 1]);
  const marked = (p) => highlightSegments(p.text, p.findings).filter((s) => s.findings.length).map((s) => s.text);
  assert.deepEqual(marked(pieces[0]), ["1234"]);
  assert.deepEqual(marked(pieces[1]), ["090"]); // code points: the emoji counts one
  // Only earlier findings (current: false): none of them is highlighted in the current text.
  assert.deepEqual(ownFindings([{ start: 0, end: 3, message_index: 0, current: false }]), []);
  assert.deepEqual(earlierPieces({ findings: [] }), []);
  assert.deepEqual(findingRules(item.findings), ["contact.phone", "contact.email"]);
});
