// Every error the SDK gives the application carries a `code` (the server's, or one of
// SDK_ERROR_CODES), so a UI can say what happened in its own words instead of `message`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SDK_ERROR_CODES, TsunaguClient, TsunaguError } from "../../chat/static/tsunagu.js";
import { FakeServer, MemoryStorage } from "./fake_server.mjs";

const SOURCE = readFileSync(new URL("../../chat/static/tsunagu.js", import.meta.url), "utf8");

function client(extra = {}) {
  const s = new FakeServer();
  return new TsunaguClient({
    server: "http://chat.test", token: "h.eyJzdWIiOiJtZSJ9.s", WebSocket: s.WebSocket,
    fetch: s.fetch, storage: new MemoryStorage(), backoff: { base: 2, cap: 10 }, pingInterval: 0, ...extra,
  });
}

async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

test("every error the SDK raises itself has a code listed in SDK_ERROR_CODES (or the server's)", () => {
  const raised = new Set([...SOURCE.matchAll(/new TsunaguError\("([a-z_]+)"/g)].map((m) => m[1]));
  assert.ok(raised.size >= 6, [...raised].join(" "));
  // What the server would refuse (a frame over max_frame_bytes) the SDK refuses with the
  // server's own code, which applications already know.
  const mirrored = new Set(["too_large"]);
  assert.deepEqual([...raised].filter((c) => !mirrored.has(c)).sort(), [...SDK_ERROR_CODES].sort());
  const serverErrors = readFileSync(new URL("../../chat/errors.py", import.meta.url), "utf8");
  for (const code of mirrored) assert.match(serverErrors, new RegExp(`"${code}"`), code);
  // ... and no error is made without one (a bare Error or TypeError reaching the application).
  assert.doesNotMatch(SOURCE, /throw new (Error|TypeError)\((?!"tsunagu: give a token)/);
  assert.doesNotMatch(SOURCE, /reject\(new Error/);
});

test("a request while not connected rejects with code disconnected", async () => {
  const err = await rejection(client().edit("t1", "m1", "x"));
  assert.ok(err instanceof TsunaguError);
  assert.equal(err.code, "disconnected");
});

test("an HTTP request that cannot be made rejects with code network, not a TypeError", async () => {
  const fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  const err = await rejection(client({ fetch }).history("t1"));
  assert.ok(err instanceof TsunaguError);
  assert.equal(err.code, "network");
  assert.ok(err.cause instanceof TypeError);
});

test("a failing token provider rejects HTTP calls with code token", async () => {
  const getToken = async () => {
    throw new Error("platform session gone");
  };
  const err = await rejection(client({ token: undefined, getToken }).history("t1"));
  assert.equal(err.code, "token");
});

test("HTTP errors keep the server's code and retry_after; without a body, http_<status>", async () => {
  const answers = [
    { ok: false, status: 429, json: async () => ({ error: { code: "rate_limited", message: "too many requests; slow down", retry_after: 2.5 } }) },
    { ok: false, status: 502, json: async () => { throw new SyntaxError("not JSON"); } },
  ];
  const fetch = async () => answers.shift();
  const c = client({ fetch });
  const limited = await rejection(c.history("t1"));
  assert.equal(limited.code, "rate_limited");
  assert.equal(limited.retry_after, 2.5);
  assert.equal(limited.status, 429);
  const proxy = await rejection(c.history("t1"));
  assert.equal(proxy.code, "http_502");
  assert.equal(proxy.status, 502);
});
