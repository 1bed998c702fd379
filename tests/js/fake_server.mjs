// A tiny in-memory stand-in for tsunagu's /v1/ws and history API, following wire-v1.md:
// seq per thread, hello with resume, idempotent send by client_msg_id, pushes to every socket.
// Used only by the SDK unit tests; the browser tests run against the real server.

export class FakeServer {
  constructor() {
    this.threads = new Map(); // id -> [messages]
    this.sockets = new Set();
    this.byCmid = new Map();
    this.sends = []; // every send frame received (retries included)
    this.hellos = [];
    this.fetches = []; // path and query of every HTTP request
    this.refuse = false; // refuse new connections (network down)
    this.dropPush = new Set(); // seqs whose live push is lost (fan-out fault)
    this.loseNextAnswer = false; // store the next send, then cut the socket before answering
    this.limits = undefined; // hello's `limits` (the real server always sends them)
    this.maxFrameBytes = Infinity; // a larger frame closes the socket with 1009, as aiohttp does
    this.closeAfterHello = null; // a close code: answer hello, then close (a failing server)
    this.sendErrors = []; // error answers {code, retry_after?} for the next sends (nothing stored)
    this.historyMax = Infinity; // a larger history `limit` is a 400, as the server answers it
    this.failFetches = 0; // the next history reads fail (network error)
    this.userExp = null; // hello's user.exp (default: in an hour)
    this.created = 0; // WebSockets created by clients
    this.WebSocket = this._socketClass();
    this.fetch = (url) => this._fetch(url);
  }

  thread(id) {
    if (!this.threads.has(id)) this.threads.set(id, []);
    return this.threads.get(id);
  }

  append(thread, sender, body, cmid) {
    const list = this.thread(thread);
    const msg = { id: `m${thread}-${list.length + 1}`, thread, seq: list.length + 1, sender, kind: "user", body, created_at: new Date().toISOString() };
    if (cmid) msg.client_msg_id = cmid;
    list.push(msg);
    return msg;
  }

  /** Another user posts: stored, then pushed live (unless the push is "lost"). */
  post(thread, sender, body) {
    const msg = this.append(thread, sender, body);
    if (!this.dropPush.has(msg.seq)) for (const ws of this.sockets) ws._push({ type: "message", message: msg });
    return msg;
  }

  killAll(code = 1006) {
    for (const ws of [...this.sockets]) ws._serverClose(code);
  }

  _receive(ws, frame) {
    if (frame.type === "hello") {
      this.hellos.push(frame);
      ws.hello = true;
      const threads = {};
      for (const [id, list] of this.threads) threads[id] = { last_seq: list.length, stage: "in_progress" };
      const exp = this.userExp ?? Date.now() / 1000 + 3600;
      const ok = { type: "ok", re: frame.id, user: { id: "me", exp }, threads, presence: {} };
      if (this.limits) ok.limits = this.limits;
      ws._push(ok);
      if (this.closeAfterHello !== null) {
        ws._serverClose(this.closeAfterHello);
        return;
      }
      for (const [id, last] of Object.entries(frame.resume || {})) {
        for (const msg of this.thread(id).slice(last)) ws._push({ type: "message", message: msg });
      }
      return;
    }
    if (!ws.hello) return ws._serverClose(4001);
    if (frame.type === "send") {
      this.sends.push(frame);
      if (this.sendErrors.length) {
        ws._push({ type: "error", re: frame.id, message: "refused by the test", ...this.sendErrors.shift() });
        return;
      }
      const key = `${frame.thread}/${frame.client_msg_id}`;
      let msg = this.byCmid.get(key);
      const duplicate = !!msg;
      if (!msg) {
        msg = this.append(frame.thread, "me", frame.body, frame.client_msg_id);
        this.byCmid.set(key, msg);
        for (const other of this.sockets) other._push({ type: "message", message: msg });
      }
      if (this.loseNextAnswer) {
        this.loseNextAnswer = false;
        ws._serverClose(1006);
        return;
      }
      ws._push({ type: "ok", re: frame.id, message: msg, duplicate });
      return;
    }
    if (frame.type === "ping" || frame.type === "read") ws._push({ type: "ok", re: frame.id });
  }

  async _fetch(url) {
    const u = new URL(url);
    const match = u.pathname.match(/^\/v1\/threads\/([^/]+)\/messages$/);
    if (!match) return { ok: false, status: 404, json: async () => ({ error: { code: "not_found", message: "no" } }) };
    this.fetches.push(u.pathname + u.search);
    if (this.failFetches > 0) {
      this.failFetches -= 1;
      throw new TypeError("Failed to fetch");
    }
    const list = this.thread(decodeURIComponent(match[1]));
    const limit = Number(u.searchParams.get("limit") || 100);
    if (limit > this.historyMax) {
      const message = `query parameter 'limit' must be between 1 and ${this.historyMax}`;
      return { ok: false, status: 400, json: async () => ({ error: { code: "bad_request", message } }) };
    }
    const after = u.searchParams.get("after_seq");
    const before = u.searchParams.get("before_seq");
    // As the server: with after_seq the first `limit` after it, else the last `limit` before
    // before_seq (or the latest).
    const below = before === null ? list : list.filter((m) => m.seq < Number(before));
    const page = after === null ? below.slice(-limit) : below.filter((m) => m.seq > Number(after)).slice(0, limit);
    return { ok: true, status: 200, json: async () => ({ messages: page, last_seq: list.length }) };
  }

  _socketClass() {
    const server = this;
    return class FakeWebSocket {
      constructor(url) {
        this.url = url;
        this.closed = false;
        server.created += 1;
        setTimeout(() => {
          if (server.refuse) return this._serverClose(1006);
          server.sockets.add(this);
          this.onopen && this.onopen({});
        }, 0);
      }
      send(data) {
        if (this.closed) throw new Error("socket closed");
        if (new TextEncoder().encode(data).length > server.maxFrameBytes) {
          server.tooBig = (server.tooBig || 0) + 1;
          this._serverClose(1009);
          return;
        }
        const frame = JSON.parse(data);
        setTimeout(() => !this.closed && server._receive(this, frame), 0);
      }
      close(code = 1000) {
        this._serverClose(code);
      }
      _push(frame) {
        if (this.closed) return;
        setTimeout(() => !this.closed && this.onmessage && this.onmessage({ data: JSON.stringify(frame) }), 0);
      }
      _serverClose(code) {
        if (this.closed) return;
        this.closed = true;
        server.sockets.delete(this);
        setTimeout(() => this.onclose && this.onclose({ code, reason: "" }), 0);
      }
    };
  }
}

export class MemoryStorage {
  constructor() { this.data = new Map(); }
  getItem(k) { return this.data.has(k) ? this.data.get(k) : null; }
  setItem(k, v) { this.data.set(k, String(v)); }
  removeItem(k) { this.data.delete(k); }
}

/** Resolve when `pred()` holds (polling every few ms; fails after `ms`). */
export async function until(pred, ms = 3000, what = "condition") {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
