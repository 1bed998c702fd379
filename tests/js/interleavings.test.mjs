// Random interleavings of send, post, lost pushes, lost answers, cuts and reloads: at the end
// the client has seen every stored message exactly once, in seq order, and every message it
// sent is stored exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TsunaguClient } from "../../chat/static/tsunagu.js";
import { FakeServer, MemoryStorage, until } from "./fake_server.mjs";

function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function makeClient(server, storage, random) {
  const c = new TsunaguClient({
    server: "http://chat.test", token: "h.eyJzdWIiOiJtZSJ9.s", WebSocket: server.WebSocket,
    fetch: server.fetch, storage, backoff: { base: 1, cap: 4 }, pingInterval: 0, random,
  });
  c.got = [];
  c.on("message", (m) => c.got.push(m));
  return c;
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) {
  test(`random interleaving, seed ${seed}`, async () => {
    const random = seeded(seed);
    const server = new FakeServer();
    const storage = new MemoryStorage();
    let c = makeClient(server, storage, random);
    await c.connect();
    await c.open("t1");
    const seen = []; // everything delivered, across page reloads
    const mine = [];
    try {
      for (let step = 0; step < 40; step += 1) {
        const r = random();
        if (r < 0.3) {
          const body = `mine-${step}`;
          mine.push(body);
          c.send("t1", body);
        } else if (r < 0.55) {
          if (random() < 0.3) server.dropPush.add(server.thread("t1").length + 1);
          server.post("t1", "sato", `theirs-${step}`);
        } else if (r < 0.65) {
          server.loseNextAnswer = true;
        } else if (r < 0.8) {
          server.refuse = random() < 0.5;
          server.killAll();
          if (server.refuse) setTimeout(() => { server.refuse = false; }, 1 + Math.floor(random() * 10));
        } else if (r < 0.87) {
          // The page is reloaded: a new client on the same storage, following the thread again.
          await until(() => !c._filling.size, 3000, "fill before reload");
          seen.push(...c.got);
          c.close();
          c = makeClient(server, storage, random);
          c.connect();
          await until(() => c.state === "open" || server.refuse, 3000, "reopen");
          const after = seen.length ? seen[seen.length - 1].seq : 0;
          c.tracker.track("t1", after);
        }
        await pause(Math.floor(random() * 4));
      }
      server.refuse = false;
      server.loseNextAnswer = false;
      server.dropPush.clear();
      await until(() => c.state === "open", 3000, "final open");
      server.post("t1", "sato", "last"); // a final push reveals any trailing gap
      const stored = server.thread("t1");
      await until(() => c.pending().length === 0, 5000, "outbox drained");
      await until(() => [...seen, ...c.got].length >= server.thread("t1").length, 5000,
        () => `all delivered`);
      const all = [...seen, ...c.got];
      assert.deepEqual(all.map((m) => m.seq), stored.map((m) => m.seq), "each seq once, in order");
      const bodies = stored.map((m) => m.body);
      for (const body of mine) assert.equal(bodies.filter((b) => b === body).length, 1, `${body} stored once`);
      assert.deepEqual(stored.filter((m) => m.sender === "me").map((m) => m.body), mine, "sent in order");
    } finally {
      c.close();
      server.refuse = false;
    }
  });
}
