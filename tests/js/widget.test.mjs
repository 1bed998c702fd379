// The widget's pure helpers (tsunagu-chat.js loads without a DOM for these).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { TEXTS, warningFor, pickText } from "../../chat/static/tsunagu-chat.js";

// The default policy's texts (moderation/policy.toml), as the server sends them.
const policy = readFileSync(new URL("../../moderation/policy.toml", import.meta.url), "utf8");
function policyText(category, side) {
  const block = policy.split(`[warnings.${category}.${side}]`)[1].split("\n[")[0];
  return { ja: block.match(/^ja = "(.*)"$/m)[1], en: block.match(/^en = "(.*)"$/m)[1] };
}

test("the widget shows the warning the server chose for the viewer, as sent", () => {
  const forClient = { ...policyText("personal_data_request", "recipient_client"), audience: "client" };
  const moderation = { action: "mask", categories: ["personal_data_request"], warning: forClient };
  assert.equal(warningFor(moderation), forClient);
  assert.match(pickText(warningFor(moderation), "ja"), /ワーカーに伝える必要はありません/u);
  assert.match(pickText(warningFor(moderation), "en"), /give a worker/u);
  assert.equal(pickText(warningFor({ action: "flag", warning: "plain" }), "ja"), "plain");
  assert.equal(warningFor({ action: "flag", categories: [] }), null);
  assert.equal(warningFor(undefined), null);
});

test("every widget text exists in Japanese and English", () => {
  assert.deepEqual(Object.keys(TEXTS.ja).sort(), Object.keys(TEXTS.en).sort());
  assert.match(TEXTS.ja.held, /確認待ち/u);
  assert.match(TEXTS.en.held, /[Hh]eld for review/u);
  assert.match(TEXTS.ja.earlierLabel, /以前のメッセージ/u);
  assert.match(TEXTS.en.earlierLabel, /[Ll]oad earlier messages/u);
});

test("errors are shown by code in the widget's language, never with the English message", async () => {
  const { errorText, errorDetail } = await import("../../chat/static/tsunagu-chat.js");
  const { SDK_ERROR_CODES } = await import("../../chat/static/tsunagu.js");
  // The codes of docs/protocol.md's error table, and those of the SDK: each has its own text.
  const protocol = readFileSync(new URL("../../docs/protocol.md", import.meta.url), "utf8");
  const table = protocol.split("## Errors and close codes")[1].split("| close code")[0];
  const serverCodes = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.ok(serverCodes.includes("rate_limited") && serverCodes.includes("bad_frame"), serverCodes.join(" "));
  const codes = [...serverCodes, "unauthorized", "too_large", ...SDK_ERROR_CODES];
  assert.deepEqual(Object.keys(TEXTS.ja.errors).sort(), Object.keys(TEXTS.en.errors).sort());
  for (const code of codes) {
    for (const locale of ["ja", "en"]) {
      assert.ok(Object.hasOwn(TEXTS[locale].errors, code), `${locale}: no text for ${code}`);
      const text = errorText({ code, message: "raw English message", retry_after: 3 }, locale);
      assert.notEqual(text, TEXTS[locale].errors.generic, `${locale}: ${code} falls back to generic`);
      assert.doesNotMatch(text, /raw English message/);
      if (locale === "ja") assert.match(text, /[\u3040-\u30ff\u4e00-\u9fff]/u, `${code}: ${text}`);
    }
  }
  // The server's messages of docs' examples are replaced, with the useful detail kept.
  const tooLong = { code: "bad_frame", message: "field 'body' is longer than 10000 characters" };
  assert.equal(errorText(tooLong, "ja", { body: "あ".repeat(10001), maxBodyChars: 10000 }),
    "メッセージが長すぎます（10000文字まで）。");
  assert.match(errorText(tooLong, "en", { body: "a".repeat(10001), maxBodyChars: 10000 }), /too long \(at most 10000 characters\)/);
  assert.equal(errorText(tooLong, "ja"), TEXTS.ja.errors.bad_frame);
  const limited = { code: "rate_limited", message: "too many messages; slow down", retry_after: 2.2 };
  assert.match(errorText(limited, "ja"), /3秒/u);
  assert.match(errorText(limited, "en"), /3 seconds/);
  assert.doesNotMatch(errorText({ code: "rate_limited" }, "ja"), /秒ほど/u);
  assert.match(errorText({ code: "disconnected", message: "not connected" }, "ja"), /接続が切れています/u);
  // HTTP statuses without an error body; unknown codes and non-errors: the generic text.
  assert.equal(errorText({ code: "http_503" }, "ja"), TEXTS.ja.errors.unavailable);
  assert.equal(errorText({ code: "http_404" }, "en"), TEXTS.en.errors.not_found);
  assert.equal(errorText({ code: "http_418" }, "ja"), TEXTS.ja.errors.generic);
  assert.equal(errorText({ code: "quota_exceeded", message: "over quota" }, "ja"), TEXTS.ja.errors.generic);
  assert.equal(errorText({ code: "tooLong" }, "ja"), TEXTS.ja.errors.generic);
  assert.equal(errorText(new TypeError("x is undefined"), "en"), TEXTS.en.errors.generic);
  assert.equal(errorText(null, "ja"), TEXTS.ja.errors.generic);
  // The raw message stays available for support.
  assert.equal(errorDetail(limited), "rate_limited: too many messages; slow down");
  assert.equal(errorDetail(new Error("boom")), "boom");
  assert.equal(errorDetail(null), "");
});
