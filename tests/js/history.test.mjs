// Older history: loadEarlier pages back with before_seq from the earliest loaded message,
// each message once, up to the start of the thread; live delivery is not disturbed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TsunaguClient, earlierPage } from "../../chat/static/tsunagu.js";
import { FakeServer, MemoryStorage, until } from "./fake_server.mjs";

function client(server) {
  const c = new TsunaguClient({
    server: "http://chat.test", token: "h.eyJzdWIiOiJtZSJ9.s", WebSocket: server.WebSocket,
    fetch: server.fetch, storage: new MemoryStorage(), backoff: { base: 2, cap: 10 }, pingInterval: 0,
  });
  c.got = [];
  c.earlier = [];
  c.on("message", (m) => c.got.push(m.seq));
  c.on("earlier", (e) => c.earlier.push(e));
  return c;
}

const m = (seq) => ({ id: `m${seq}`, thread: "t1", seq, body: `b${seq}` });
const seqs = (list) => list.map((x) => x.seq);

test("earlierPage keeps only older messages, once, in order, and knows the start", () => {
  let out = earlierPage(11, [m(8), m(9), m(10), m(11), m(12), m(9)], 8);
  assert.deepEqual(seqs(out.messages), [8, 9, 10]);
  assert.equal(out.first, 8);
  assert.equal(out.done, true, "a page shorter than the limit reached the start");
  out = earlierPage(11, [m(6), m(7), m(8), m(9), m(10)], 5);
  assert.deepEqual([out.first, out.done], [6, false]);
  out = earlierPage(3, [m(1), m(2)], 2);
  assert.deepEqual([out.first, out.done], [1, true], "seq 1 is the start");
  out = earlierPage(4, [], 10);
  assert.deepEqual([seqs(out.messages), out.first, out.done], [[], 4, true]);
  out = earlierPage(null, [m(3), m(2)]);
  assert.deepEqual([seqs(out.messages), out.first, out.done], [[2, 3], 2, false]);
});

test("loadEarlier pages back to the start without duplicates, then stops asking", async () => {
  const s = new FakeServer();
  for (let i = 1; i <= 25; i += 1) s.post("t1", "sato", `m${i}`);
  const c = client(s);
  await c.connect();
  const first = await c.open("t1", { limit: 10 });
  assert.deepEqual(seqs(first), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  assert.equal(c.hasEarlier("t1"), true);
  const a = await c.loadEarlier("t1", { limit: 10 });
  assert.deepEqual([seqs(a.messages), a.done], [[6, 7, 8, 9, 10, 11, 12, 13, 14, 15], false]);
  const b = await c.loadEarlier("t1", { limit: 10 });
  assert.deepEqual([seqs(b.messages), b.done], [[1, 2, 3, 4, 5], true]);
  assert.equal(c.hasEarlier("t1"), false);
  const asked = s.fetches.length;
  const again = await c.loadEarlier("t1", { limit: 10 });
  assert.deepEqual([again.messages, again.done], [[], true]);
  assert.equal(s.fetches.length, asked, "no request once the start is reached");
  assert.ok(s.fetches.some((f) => f.includes("before_seq=16")), s.fetches.join(" "));
  assert.ok(s.fetches.some((f) => f.includes("before_seq=6")), s.fetches.join(" "));
  assert.deepEqual(c.earlier.map((e) => seqs(e.messages).length), [10, 5]);
  // Older pages are not `message` events: those stay the opened page and what follows, in order.
  assert.deepEqual(c.got, [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  c.close();
});

test("concurrent loadEarlier calls share one request; live messages keep flowing", async () => {
  const s = new FakeServer();
  for (let i = 1; i <= 12; i += 1) s.post("t1", "sato", `m${i}`);
  const c = client(s);
  await c.connect();
  await c.open("t1", { limit: 4 });
  const before = s.fetches.length;
  const [x, y] = await Promise.all([c.loadEarlier("t1", { limit: 4 }), c.loadEarlier("t1", { limit: 4 })]);
  assert.equal(x, y);
  assert.equal(s.fetches.length, before + 1);
  assert.deepEqual(seqs(x.messages), [5, 6, 7, 8]);
  s.post("t1", "sato", "live");
  await until(() => c.got.includes(13), 3000, "live message");
  const z = await c.loadEarlier("t1", { limit: 4 });
  assert.deepEqual(seqs(z.messages), [1, 2, 3, 4]);
  assert.deepEqual(c.got, [9, 10, 11, 12, 13]);
  c.close();
});

test("an empty thread has nothing earlier; loadEarlier before open is an error", async () => {
  const s = new FakeServer();
  const c = client(s);
  await c.connect();
  await assert.rejects(c.loadEarlier("t1"), (e) => e.code === "not_open");
  await c.open("t1");
  assert.equal(c.hasEarlier("t1"), false);
  assert.deepEqual(await c.loadEarlier("t1"), { messages: [], done: true });
  c.close();
});
