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
