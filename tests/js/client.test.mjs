// The SDK client against an in-memory server: resume, reconnect, gap fill, outbox retries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TsunaguClient } from "../../chat/static/tsunagu.js";
import { FakeServer, MemoryStorage, until } from "./fake_server.mjs";

function client(server, storage = new MemoryStorage(), extra = {}) {
  const c = new TsunaguClient({
    server: "http://chat.test", token: "h.eyJzdWIiOiJtZSJ9.s", WebSocket: server.WebSocket,
    fetch: server.fetch, storage, backoff: { base: 2, cap: 10 }, pingInterval: 0, ...extra,
  });
  c.got = [];
  c.states = [];
  c.on("message", (m) => c.got.push(m));
  c.on("state", (s) => c.states.push(s.state));
  return c;
}

const seqs = (c, thread = "t1") => c.got.filter((m) => m.thread === thread).map((m) => m.seq);

test("open loads history, live messages follow in order", async () => {
  const s = new FakeServer();
  s.post("t1", "sato", "one");
  s.post("t1", "sato", "two");
  const c = client(s);
  await c.connect();
  await c.open("t1");
  s.post("t1", "sato", "three");
  await until(() => c.got.length === 3, 3000, "three messages");
  assert.deepEqual(seqs(c), [1, 2, 3]);
  c.close();
});

test("after a cut, reconnect resumes from the last seq: nothing lost or duplicated", async () => {
  const s = new FakeServer();
  const c = client(s);
  await c.connect();
  await c.open("t1");
  s.post("t1", "sato", "a");
  await until(() => c.got.length === 1);
  s.refuse = true;
  s.killAll();
  await until(() => c.state === "reconnecting");
  s.post("t1", "sato", "b (while away)");
  s.post("t1", "sato", "c (while away)");
  s.refuse = false;
  await until(() => c.got.length === 3 && c.state === "open", 3000, "resume");
  assert.deepEqual(seqs(c), [1, 2, 3]);
  const lastHello = s.hellos.at(-1);
  assert.deepEqual(lastHello.resume, { t1: 1 });
  assert.ok(s.hellos.length >= 2);
  assert.ok(c.states.includes("reconnecting"));
  c.close();
});

test("a seq gap in live pushes is filled from history before later messages", async () => {
  const s = new FakeServer();
  const c = client(s);
  const gaps = [];
  c.on("gap", (g) => gaps.push(g));
  await c.connect();
  await c.open("t1");
  s.dropPush.add(2);
  s.dropPush.add(3);
  for (const b of ["1", "2", "3", "4"]) s.post("t1", "sato", b);
  await until(() => c.got.length === 4, 3000, "gap filled");
  assert.deepEqual(seqs(c), [1, 2, 3, 4]);
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0].from, 2);
  c.close();
});

test("messages sent while disconnected wait in the outbox and go out once, in order", async () => {
  const s = new FakeServer();
  const storage = new MemoryStorage();
  const c = client(s, storage);
  await c.connect();
  await c.open("t1");
  s.refuse = true;
  s.killAll();
  await until(() => c.state === "reconnecting");
  c.send("t1", "first");
  c.send("t1", "second");
  assert.equal(c.pending("t1").length, 2);
  assert.ok(storage.getItem(c.outbox.key).includes("second"), "outbox persisted");
  s.refuse = false;
  await until(() => c.pending().length === 0 && c.got.length === 2, 3000, "outbox flushed");
  assert.deepEqual(s.thread("t1").map((m) => m.body), ["first", "second"]);
  assert.deepEqual(seqs(c), [1, 2]);
  assert.equal(storage.getItem(c.outbox.key), null);
  c.close();
});

test("a lost answer is retried with the same client_msg_id and stored once", async () => {
  const s = new FakeServer();
  const c = client(s);
  const sent = [];
  c.on("sent", (e) => sent.push(e));
  await c.connect();
  await c.open("t1");
  s.loseNextAnswer = true;
  const item = c.send("t1", "only once");
  await until(() => sent.length === 1, 3000, "sent after retry");
  assert.equal(s.sends.length, 2);
  assert.equal(s.sends[0].client_msg_id, item.client_msg_id);
  assert.equal(s.sends[1].client_msg_id, item.client_msg_id);
  assert.equal(s.thread("t1").length, 1);
  assert.equal(sent[0].duplicate, true);
  assert.deepEqual(seqs(c), [1]);
  c.close();
});

test("an outbox left by a closed page is sent by the next client", async () => {
  const s = new FakeServer();
  const storage = new MemoryStorage();
  s.refuse = true;
  const a = client(s, storage);
  a.connect();
  a.send("t1", "written offline");
  a.close();
  s.refuse = false;
  const b = client(s, storage);
  assert.equal(b.pending().length, 1);
  await b.connect();
  await until(() => b.pending().length === 0, 3000, "flushed by the new client");
  assert.deepEqual(s.thread("t1").map((m) => m.body), ["written offline"]);
  b.close();
});

test("reconnect delays follow full-jitter backoff and reset once the connection stayed up", async () => {
  const s = new FakeServer();
  s.refuse = true;
  const delays = [];
  const c = client(s, new MemoryStorage(), { backoff: { base: 4, cap: 16, resetAfter: 40 }, random: () => 0.99 });
  c.on("retry", (e) => delays.push(e.delay));
  try {
    c.connect();
    await until(() => delays.length >= 5, 3000, "five retries");
    assert.deepEqual(delays.slice(0, 5), [3, 7, 15, 15, 15]);
    s.refuse = false;
    await until(() => c.state === "open", 3000, "open");
    assert.ok(c.attempt > 0, "not reset by the hello alone");
    await until(() => c.attempt === 0, 3000, "reset after resetAfter");
  } finally {
    c.close();
  }
});

test("a 4001 close with a fixed token stops reconnecting", async () => {
  const s = new FakeServer();
  const c = client(s);
  await c.connect();
  for (const ws of s.sockets) ws._serverClose(4001);
  await until(() => c.state === "unauthorized");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(s.hellos.length, 1);
  c.close();
});
