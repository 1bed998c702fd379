// <tsunagu-chat> — an embeddable chat widget for one tsunagu thread (web component, no build).
//
//   <script type="module" src="https://chat.example.jp/static/tsunagu-chat.js"></script>
//   <tsunagu-chat server="https://chat.example.jp" thread="t_123" token="eyJ…" locale="ja"></tsunagu-chat>
//
// Attributes: server, thread, token, locale (ja|en), names (JSON {user_id: display name}),
// backoff-cap (ms, the longest reconnect delay), page-size (messages per history page, 50).
// The SDK client is `element.client`.
// The DOM is built with createElement/textContent only (no innerHTML with message text).

import { errorCode, errorDetail, errorTextFrom, h, keyed, reconcile, validTimeZone } from "./dom.js";
import { TsunaguClient, mergeMessage, tokenClaims } from "./tsunagu.js";

export const TEXTS = {
  ja: {
    composer: "メッセージを入力",
    send: "送信",
    save: "保存",
    cancel: "キャンセル",
    editing: "メッセージを編集中（Escでキャンセル）",
    edit: "編集",
    delete: "削除",
    confirmDelete: "本当に削除",
    thanks: "ありがとう",
    thanksLabel: (n) => `ありがとう（${n}件）`,
    thanked: "ありがとうを送りました",
    sending: "送信中",
    sent: "送信済み",
    read: "既読",
    failed: "送信できませんでした",
    retry: "再送",
    discard: "取り消す",
    edited: "編集済み",
    deleted: "このメッセージは削除されました",
    held: "確認待ち：モデレーターが内容を確認しています。確認後に相手に届きます。",
    blocked: "このメッセージは送信されませんでした。",
    rejected: "モデレーターの確認の結果、このメッセージは相手に届けられませんでした。",
    editHeld: "編集は確認待ちです。モデレーターの確認後に反映されます。",
    editBlocked: "この編集は反映されませんでした。",
    editRejected: "モデレーターの確認の結果、編集は反映されませんでした。",
    editPending: "編集内容をモデレーターが確認中です",
    masked: "安全のため、一部を伏せて表示しています",
    maskedSpan: "伏せ字",
    maskedForOthers: "相手には一部を伏せて表示しています",
    typing: (who) => `${who}さんが入力中…`,
    counter: (n, max) => `${n} / ${max}文字`,
    online: "オンライン",
    offline: "オフライン",
    connecting: "接続しています…",
    reconnecting: "接続が切れました。再接続しています…",
    unauthorized: "ログインの有効期限が切れました。ページを再読み込みしてください。",
    unsent: (n) => `未送信 ${n}件（接続後に自動で送信します）`,
    inbox: "お知らせ",
    inboxLabel: (n) => (n ? `お知らせ（未読 ${n}件）` : "お知らせ"),
    inboxEmpty: "お知らせはありません",
    markRead: "既読にする",
    close: "閉じる",
    messages: "メッセージ一覧",
    system: "お知らせ",
    you: "あなた",
    warning: "注意",
    newer: "新着メッセージ",
    earlier: "以前のメッセージ",
    earlierLabel: "以前のメッセージを読み込む",
    loadingEarlier: "読み込み中…",
    start: "ここから会話が始まりました",
    stages: { inquiry: "問い合わせ", deposit_pending: "仮払い待ち", in_progress: "作業中", delivered: "納品済み", closed: "完了" },
    // Errors, by their `code` (docs/protocol.md's error table and the SDK's own codes); the
    // server's English `message` is kept for support only (the title attribute, the console).
    errors: {
      generic: "エラーが発生しました。しばらくしてからもう一度お試しください。",
      tooLong: (max) => `メッセージが長すぎます（${max}文字まで）。`,
      bad_frame: "この内容は受け付けられませんでした。",
      bad_request: "この操作はできません。",
      forbidden: "この操作を行う権限がありません。",
      not_found: "メッセージまたは会話が見つかりません。",
      conflict: "このメッセージは削除されているため変更できません。",
      too_large: "データが大きすぎるため送れませんでした。",
      rate_limited: (s) => (s ? `操作が続いたため制限中です。${s}秒ほど待ってからもう一度お試しください。`
        : "操作が続いたため制限中です。少し待ってからもう一度お試しください。"),
      unavailable: "サーバーが一時的に利用できません。しばらくしてからもう一度お試しください。",
      internal: "サーバーでエラーが発生しました。もう一度お試しください。",
      unauthorized: "ログインの有効期限が切れました。ページを再読み込みしてください。",
      disconnected: "接続が切れています。再接続してからもう一度お試しください。",
      closed: "接続を終了しました。ページを再読み込みしてください。",
      timeout: "サーバーから応答がありませんでした。もう一度お試しください。",
      network: "サーバーと通信できませんでした。ネットワーク接続を確認してください。",
      connect: "サーバーに接続できませんでした。",
      token: "ログイン情報を取得できませんでした。ページを再読み込みしてください。",
      not_open: "会話がまだ読み込まれていません。",
      unsupported: "このブラウザーでは利用できません。",
    },
    dateFmt: { year: "numeric", month: "long", day: "numeric", weekday: "short" },
    tag: "ja-JP",
  },
  en: {
    composer: "Write a message",
    send: "Send",
    save: "Save",
    cancel: "Cancel",
    editing: "Editing a message (Esc to cancel)",
    edit: "Edit",
    delete: "Delete",
    confirmDelete: "Really delete",
    thanks: "Thanks",
    thanksLabel: (n) => `Thanks (${n})`,
    thanked: "Thanks sent",
    sending: "Sending",
    sent: "Sent",
    read: "Read",
    failed: "Could not be sent",
    retry: "Retry",
    discard: "Discard",
    edited: "edited",
    deleted: "This message was deleted",
    held: "Held for review: a moderator is checking it. It will be delivered once approved.",
    blocked: "This message was not sent.",
    rejected: "After review by a moderator, this message was not delivered.",
    editHeld: "Your edit is held for review; it will appear once a moderator approves it.",
    editBlocked: "This edit was not applied.",
    editRejected: "After review by a moderator, your edit was not applied.",
    editPending: "A moderator is reviewing your edit",
    masked: "Part of this message is hidden for your safety",
    maskedSpan: "hidden",
    maskedForOthers: "Part of this message is hidden from the recipient",
    typing: (who) => `${who} is typing…`,
    counter: (n, max) => `${n} / ${max} characters`,
    online: "online",
    offline: "offline",
    connecting: "Connecting…",
    reconnecting: "Connection lost. Reconnecting…",
    unauthorized: "Your session has expired. Please reload the page.",
    unsent: (n) => `${n} unsent (will be sent when the connection is back)`,
    inbox: "Notifications",
    inboxLabel: (n) => (n ? `Notifications (${n} unread)` : "Notifications"),
    inboxEmpty: "No notifications",
    markRead: "Mark as read",
    close: "Close",
    messages: "Messages",
    system: "Notice",
    you: "You",
    warning: "Warning",
    newer: "New messages",
    earlier: "Load earlier messages",
    earlierLabel: "Load earlier messages",
    loadingEarlier: "Loading…",
    start: "This is the start of the conversation",
    stages: { inquiry: "Inquiry", deposit_pending: "Deposit pending", in_progress: "In progress", delivered: "Delivered", closed: "Closed" },
    errors: {
      generic: "Something went wrong. Please try again later.",
      tooLong: (max) => `The message is too long (at most ${max} characters).`,
      bad_frame: "This could not be accepted.",
      bad_request: "This action is not possible.",
      forbidden: "You are not allowed to do this.",
      not_found: "The message or conversation was not found.",
      conflict: "This message was deleted and can no longer be changed.",
      too_large: "This is too large to send.",
      rate_limited: (s) => (s ? `Too many actions in a short time. Please wait about ${s} seconds and try again.`
        : "Too many actions in a short time. Please wait a moment and try again."),
      unavailable: "The service is temporarily unavailable. Please try again shortly.",
      internal: "A server error occurred. Please try again.",
      unauthorized: "Your session has expired. Please reload the page.",
      disconnected: "Not connected. Please try again once the connection is back.",
      closed: "The connection was closed. Please reload the page.",
      timeout: "The server did not answer. Please try again.",
      network: "Could not reach the server. Please check your network connection.",
      connect: "Could not connect to the server.",
      token: "Could not get your sign-in. Please reload the page.",
      not_open: "The conversation is not loaded yet.",
      unsupported: "This browser is not supported.",
    },
    dateFmt: { year: "numeric", month: "long", day: "numeric", weekday: "short" },
    tag: "en-US",
  },
};

/**
 * The moderation warning a viewer sees under a message: the server already picked the text
 * for the viewer's side (sender or recipient) and for the direction (a worker's message
 * warns its client recipient in a client's words, `audience: "client"`). Returns {ja, en}
 * or a string, or null.
 */
export function warningFor(moderation) {
  return moderation?.warning || null;
}

/** A localized text from a string or an object {ja, en}. */
export function pickText(value, locale) {
  if (value == null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return value[locale] || value.ja || value.en || Object.values(value)[0] || "";
  return String(value);
}

// An HTTP status without a tsunagu error body (a proxy's page, say) as the nearest code.
/**
 * The user-facing text for an error of the server or the SDK (`{code, message, retry_after?,
 * status?}`), chosen by its `code` in the widget's language; never the English `message`.
 * `body` (the text sent) and `maxBodyChars` (hello's limits) name a too-long message.
 */
export function errorText(err, locale, { body, maxBodyChars } = {}) {
  const texts = (TEXTS[locale] || TEXTS.ja).errors;
  if (errorCode(err) === "bad_frame" && typeof body === "string" && maxBodyChars > 0
      && [...body].length > maxBodyChars) {
    return texts.tooLong(maxBodyChars);
  }
  return errorTextFrom(texts, err);
}

export { errorDetail, validTimeZone };

/** The product's default time zone, used when a token's `tz` is missing or not a zone. */
export const DEFAULT_TZ = "Asia/Tokyo";

/** The server's default limits (docs/protocol.md), until `hello` tells the real ones. */
export const DEFAULT_LIMITS = Object.freeze({ max_body_chars: 10000, max_frame_bytes: 65536 });

// Room in a `send`/`edit` frame for everything but the body: type, id, thread and
// client_msg_id (at most 128 characters each), the JSON around them.
const FRAME_OVERHEAD = 1024;

/**
 * How a body fits the server's limits (`limits` as in hello's `ok`, defaults otherwise):
 * `chars` counts code points, as the server does; `over` when it has more than
 * `max_body_chars`; `tooBig` when the frame carrying it would pass `max_frame_bytes` (the
 * server closes the socket with 1009 then).
 */
export function bodyFit(body, limits) {
  const max = limits?.max_body_chars > 0 ? limits.max_body_chars : DEFAULT_LIMITS.max_body_chars;
  const frameMax = limits?.max_frame_bytes > 0 ? limits.max_frame_bytes : DEFAULT_LIMITS.max_frame_bytes;
  const text = String(body ?? "");
  const chars = [...text].length;
  const bytes = new TextEncoder().encode(JSON.stringify(text)).length;
  return { chars, max, over: chars > max, tooBig: bytes + FRAME_OVERHEAD > frameMax };
}

/**
 * The message list in time order: stored messages (in seq order) and the user's own local
 * rows (`locals`: withheld, failed and unsent ones, each `{at: Date, client_msg_id?, ...}`)
 * where they were written, a day separator before the first entry of each day (each day
 * once). A local row whose client_msg_id is already among the messages is left out: its
 * message arrived (the push comes before the `ok` that empties the outbox).
 * Returns [{type: "day", key, date} | {type: "message", message, date} | {type: "local", local, date}].
 */
export function timeline(messages, locals, dayKey) {
  const delivered = new Set(messages.map((m) => m.client_msg_id).filter(Boolean));
  const pending = locals
    .filter((l) => !(l.client_msg_id && delivered.has(l.client_msg_id)))
    .map((l, i) => ({ l, i, at: l.at instanceof Date && !Number.isNaN(+l.at) ? l.at : new Date() }))
    .sort((a, b) => a.at - b.at || a.i - b.i);
  const out = [];
  const days = new Set();
  let lastDay = null;
  const day = (date) => {
    const key = dayKey(date);
    if (key !== lastDay && !days.has(key)) {
      days.add(key);
      out.push({ type: "day", key, date });
    }
    lastDay = key;
  };
  let next = 0;
  const localsUntil = (date) => {
    while (next < pending.length && (date === null || pending[next].at <= date)) {
      const { l, at } = pending[next++];
      day(at);
      out.push({ type: "local", local: l, date: at });
    }
  };
  for (const m of messages) {
    const date = new Date(m.created_at);
    localsUntil(date);
    day(date);
    out.push({ type: "message", message: m, date });
  }
  localsUntil(null);
  return out;
}

const MASK_RUN = /(●+|[＊*█■▇×✕•]{2,}|\[(?:masked|hidden|非表示|伏字)\]|［(?:非表示|伏字)］)/gu;

/** Split a masked body into text and masked parts: [{text, masked}]. */
export function maskedParts(body) {
  const parts = [];
  let last = 0;
  for (const m of body.matchAll(MASK_RUN)) {
    if (m.index > last) parts.push({ text: body.slice(last, m.index), masked: false });
    parts.push({ text: m[0], masked: true });
    last = m.index + m[0].length;
  }
  if (last < body.length) parts.push({ text: body.slice(last), masked: false });
  return parts;
}

const STYLE = `
:host { display: block; min-width: 0; font-family: system-ui, -apple-system, "Hiragino Sans", "Noto Sans JP", "Yu Gothic", sans-serif;
  font-size: 15px; color: #1f2933; height: 520px; --accent: #0b6bcb; --mine: #dcecff; --theirs: #f1f3f5; }
* { box-sizing: border-box; }
.root { display: flex; flex-direction: column; height: 100%; border: 1px solid #cfd6de; border-radius: 12px; overflow: hidden; background: #fff; position: relative; }
header { display: flex; align-items: center; gap: 8px; padding: 10px 12px; border-bottom: 1px solid #e3e8ee; background: #f8fafc; }
.title { font-weight: 600; flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.stage { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #e7f0fa; color: #0b4f96; white-space: nowrap; }
.people { font-size: 12px; color: #52606d; display: flex; gap: 8px; flex-wrap: wrap; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #9aa5b1; margin-right: 4px; vertical-align: middle; }
.dot.online { background: #1f9d55; }
button { font: inherit; cursor: pointer; border-radius: 8px; border: 1px solid #b8c2cc; background: #fff; color: #1f2933; padding: 4px 10px; }
button:hover { background: #f1f5f9; }
button:focus-visible, textarea:focus-visible { outline: 3px solid #f5a623; outline-offset: 1px; }
.bell { position: relative; border: none; background: transparent; font-size: 18px; padding: 4px 8px; }
.badge { position: absolute; top: -2px; right: -2px; min-width: 18px; height: 18px; padding: 0 5px; border-radius: 9px; background: #d64545; color: #fff; font-size: 11px; line-height: 18px; font-weight: 700; }
.banner { padding: 6px 12px; font-size: 13px; background: #fff4e0; color: #7a4b00; border-bottom: 1px solid #f3d9a4; }
.banner.bad { background: #fde8e8; color: #8a1c1c; }
.list { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 6px; background: #fff; }
.day { align-self: center; font-size: 12px; color: #52606d; background: #eef1f4; padding: 2px 10px; border-radius: 10px; margin: 8px 0 4px; }
.msg { max-width: 85%; display: flex; flex-direction: column; gap: 2px; }
.msg.mine { align-self: flex-end; align-items: flex-end; }
.msg.theirs { align-self: flex-start; }
.who { font-size: 12px; color: #52606d; }
.bubble { padding: 8px 12px; border-radius: 14px; background: var(--theirs); white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.5; }
.mine .bubble { background: var(--mine); }
.msg.pending .bubble { opacity: .75; border: 1px dashed #7b93ad; }
.msg.withheld .bubble { background: #fff7e6; border: 1px dashed #d89614; }
.msg.blocked .bubble { background: #fdecec; border: 1px dashed #c53030; text-decoration: line-through; }
.bubble.deleted { font-style: italic; color: #7b8794; background: #fafafa; border: 1px dashed #cbd2d9; }
.masked-span { background: #2d3748; color: #fff; border-radius: 4px; padding: 0 4px; letter-spacing: 1px; }
.masked-note, .warn { font-size: 12px; padding: 4px 8px; border-radius: 6px; max-width: 100%; }
.masked-note { background: #edf2f7; color: #2d3748; border-left: 3px solid #4a5568; }
.warn { background: #fff4e0; color: #7a4b00; border-left: 3px solid #d89614; }
.meta { font-size: 11px; color: #7b8794; display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.meta .state.read { color: var(--accent); font-weight: 600; }
.meta .state.failed { color: #c53030; font-weight: 600; }
.actions { display: flex; gap: 4px; flex-wrap: wrap; }
.actions button { font-size: 12px; padding: 2px 8px; }
.thanks[aria-pressed="true"] { background: #fff0f3; border-color: #e88ca0; }
.system { align-self: center; max-width: 92%; text-align: center; font-size: 13px; color: #334e68; background: #eef6ff; border: 1px solid #cfe3fa; padding: 6px 12px; border-radius: 10px; }
.earlier { align-self: center; font-size: 13px; padding: 4px 14px; border-radius: 14px; color: #0b4f96; border-color: #9cc3ea; background: #f3f8ff; flex: none; }
.earlier[aria-busy="true"] { color: #52606d; cursor: progress; }
.start { align-self: center; font-size: 12px; color: #52606d; padding: 2px 0 6px; }
.typing { min-height: 20px; padding: 0 14px; font-size: 12px; color: #52606d; }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e3e8ee; background: #f8fafc; align-items: flex-end; }
.editing-label { font-size: 12px; color: #7a4b00; padding: 4px 12px 0; background: #f8fafc; }
.counter { font-size: 12px; color: #52606d; text-align: right; padding: 0 14px 6px; background: #f8fafc; }
.counter.over { color: #c53030; font-weight: 600; }
textarea[aria-invalid="true"] { border-color: #c53030; }
textarea { flex: 1; resize: none; min-height: 40px; max-height: 120px; padding: 8px 10px; border: 1px solid #b8c2cc; border-radius: 10px; font: inherit; }
form button[type=submit] { background: var(--accent); color: #fff; border-color: var(--accent); padding: 8px 16px; font-weight: 600; }
.inbox { position: absolute; top: 48px; right: 8px; width: min(340px, calc(100% - 16px)); max-height: 60%; overflow-y: auto; background: #fff; border: 1px solid #cfd6de; border-radius: 10px; box-shadow: 0 8px 24px rgba(0,0,0,.15); z-index: 5; }
.inbox h2 { font-size: 14px; margin: 0; padding: 10px 12px; border-bottom: 1px solid #e3e8ee; display: flex; justify-content: space-between; align-items: center; }
.inbox ul { list-style: none; margin: 0; padding: 0; }
.inbox li { padding: 8px 12px; border-bottom: 1px solid #f0f2f4; font-size: 13px; }
.inbox li.unread { background: #f3f8ff; font-weight: 600; }
.inbox li button { margin-top: 4px; font-size: 12px; font-weight: normal; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 480px) { :host { font-size: 14px; } .msg { max-width: 94%; } .people { display: none; } }
`;

// Without a DOM (unit tests under Node) the module still loads, for its pure helpers.
const Base = globalThis.HTMLElement ?? class {};

export class TsunaguChat extends Base {
  static get observedAttributes() {
    return ["server", "thread", "token", "locale", "names", "backoff-cap"];
  }

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this.client = null;
    this._reset();
  }

  _reset() {
    this.messages = [];
    this.failed = [];
    this.withheld = [];
    this.readBy = new Map();
    this.typingUsers = new Map();
    this.participants = [];
    this.threadInfo = null;
    this.notifications = null; // null: no inbox API
    this.inboxOpen = false;
    this.editing = null;
    this.heldEdits = new Map(); // withheld id -> message id: this user's edits awaiting review
    this.confirmingDelete = null;
    this.thankedByMe = new Set();
    this.myRead = 0;
    this._readTimer = null;
    this._opened = false; // the first page is loaded (earlier pages can be asked for)
    this.earlier = { loading: false, loaded: false };
    this._saving = null; // the id of the message whose edit is being saved
  }

  get locale() {
    const attr = this.getAttribute("locale");
    if (attr === "ja" || attr === "en") return attr;
    const claim = this.getAttribute("token") ? tokenClaims(this.getAttribute("token")).locale : null;
    if (claim === "ja" || claim === "en") return claim;
    return (navigator.language || "ja").startsWith("ja") ? "ja" : "en";
  }

  get t() {
    return TEXTS[this.locale];
  }

  get thread() {
    return this.getAttribute("thread");
  }

  get me() {
    return this.client?.user?.id ?? tokenClaims(this.getAttribute("token") || "").sub;
  }

  connectedCallback() {
    this._started = true;
    this._onVisible = () => document.visibilityState === "visible" && this._scheduleRead();
    document.addEventListener("visibilitychange", this._onVisible);
    this._start();
  }

  disconnectedCallback() {
    this._started = false;
    document.removeEventListener("visibilitychange", this._onVisible);
    this._stop();
  }

  attributeChangedCallback(name, old, value) {
    if (!this._started || old === value) return;
    if (name === "locale" || name === "names") this.render();
    else {
      this._stop();
      this._start();
    }
  }

  _stop() {
    if (this.client) this.client.close();
    this.client = null;
    clearTimeout(this._readTimer);
    for (const t of this.typingUsers.values()) clearTimeout(t);
    this._reset();
  }

  _names() {
    try {
      return JSON.parse(this.getAttribute("names") || "{}");
    } catch {
      return {};
    }
  }

  /** The viewer's role in the thread (client, worker, …), once the thread is loaded. */
  get role() {
    return this.participants.find((p) => p.user_id === this.me)?.role ?? null;
  }

  get pageSize() {
    const n = Number(this.getAttribute("page-size"));
    return Number.isFinite(n) && n >= 1 ? Math.min(500, Math.floor(n)) : 50;
  }

  nameOf(user) {
    if (user === this.me) return this._names()[user] || this.client?.user?.name || user;
    return this._names()[user] || user;
  }

  async _start() {
    const token = this.getAttribute("token");
    const thread = this.thread;
    this.render();
    if ((!token && typeof this.getToken !== "function") || !thread) return;
    const cap = Number(this.getAttribute("backoff-cap")) || 30000;
    const client = new TsunaguClient({
      server: this.getAttribute("server") || location.origin,
      // A page that can mint fresh tokens sets `element.getToken = async () => jwt` before
      // inserting the element; the SDK then renews the token before it expires.
      ...(typeof this.getToken === "function" ? { getToken: this.getToken } : { token }),
      backoff: { base: Math.min(500, cap), cap },
    });
    this.client = client;
    client.on("state", () => this.render());
    client.on("outbox", () => this.render());
    client.on("message", (m) => {
      if (m.thread !== thread) return;
      this.messages = mergeMessage(this.messages, m);
      this.withheld = this.withheld.filter((w) => !m.client_msg_id || w.item.client_msg_id !== m.client_msg_id);
      this.typingUsers.delete(m.sender);
      this.render({ scroll: true });
      this._scheduleRead();
    });
    client.on("update", ({ message }) => {
      if (message.thread !== thread) return;
      // An edit of a message above the loaded pages waits until that page is loaded.
      const known = this.messages.some((m) => m.id === message.id);
      if (!known && this.messages.length && message.seq < this.messages[0].seq) return;
      this.messages = mergeMessage(this.messages, message);
      this.render();
    });
    client.on("sent", ({ message }) => {
      if (message.thread === thread) {
        this.messages = mergeMessage(this.messages, message);
        this.render({ scroll: true });
      }
    });
    client.on("withheld", (w) => {
      if (w.item.thread !== thread) return;
      const id = w.withheld?.id;
      this.withheld = [...this.withheld.filter((x) => id === undefined || x.withheld?.id !== id), { ...w, addedAt: Date.now() }];
      this.render({ scroll: true });
    });
    client.on("withheld_status", (e) => {
      if (e.thread !== thread) return;
      if (this.heldEdits.delete(e.id) && e.status === "rejected") this._flash(`⚠ ${this.t.editRejected}`, 15000);
      if (e.status === "released") {
        this.withheld = this.withheld.filter((w) => w.withheld?.id !== e.id);
        if (e.message) this.messages = mergeMessage(this.messages, e.message);
      } else {
        this.withheld = this.withheld.map((w) => (w.withheld?.id === e.id ? { ...w, rejected: true } : w));
      }
      this.render({ scroll: true });
    });
    client.on("moderation_warning", (e) => {
      if (e.thread && e.thread !== thread) return;
      this._flash(`⚠ ${pickText(e.warning, this.locale)}`, 15000);
    });
    client.on("failed", (f) => {
      if (f.item.thread !== thread) return;
      this.failed = [...this.failed, f];
      this.render();
    });
    client.on("receipt", (r) => {
      if (r.thread !== thread) return;
      if (r.user === this.me) this.myRead = Math.max(this.myRead, r.seq);
      else this.readBy.set(r.user, Math.max(this.readBy.get(r.user) || 0, r.seq));
      this.render();
    });
    client.on("typing", (e) => {
      if (e.thread !== thread || e.user === this.me) return;
      clearTimeout(this.typingUsers.get(e.user));
      this.typingUsers.set(e.user, setTimeout(() => {
        this.typingUsers.delete(e.user);
        this.render();
      }, 4000));
      this.render();
    });
    client.on("presence", () => this.render());
    // After a reconnect: what changed meanwhile. `update`, `receipt`, `withheld` and
    // `notification` pushes are not replayed on resume (only new messages are), so edits,
    // deletions, thanks, read positions, moderators' decisions and notices are read again.
    client.on("hello", () => {
      if (!this._opened) return;
      this._syncWithheld(client);
      this._resync(client);
      if (this.notifications !== null) this._loadInbox(client);
    });
    client.on("thread_updated", (e) => {
      if (e.thread === thread && this.threadInfo) {
        this.threadInfo = { ...this.threadInfo, stage: e.stage, title: e.title };
        this.render();
      }
    });
    client.on("notification", (n) => {
      if (this.notifications === null) this.notifications = { items: [], unread: 0 };
      const item = n.notification || n;
      this.notifications.items = [item, ...this.notifications.items.filter((i) => i.id !== item.id)];
      this.notifications.unread = typeof n.unread === "number" ? n.unread : this.notifications.unread + 1;
      this.render();
    });
    try {
      await client.connect();
      if (this.client !== client) return;
      const [info] = await Promise.all([client.thread(thread), client.open(thread, { limit: this.pageSize })]);
      if (this.client !== client) return;
      this._opened = true;
      this.threadInfo = info;
      this.participants = info.participants || [];
      for (const p of this.participants) {
        if (p.user_id === this.me) this.myRead = Math.max(this.myRead, p.read_seq || 0);
        else this.readBy.set(p.user_id, Math.max(this.readBy.get(p.user_id) || 0, p.read_seq || 0));
      }
      this.render({ scroll: true });
      this._scheduleRead();
      this._syncWithheld(client);
      this._loadInbox(client);
    } catch (err) {
      console.error("tsunagu-chat:", errorDetail(err), err);
      this._error = { err };
      this.render();
    }
  }

  /**
   * Show the user's own messages that moderation holds (or rejected, or refused) from the
   * server, so they survive a reload; the server's status wins over what the page had.
   */
  async _syncWithheld(client) {
    const since = Date.now();
    let rows;
    try {
      rows = await client.withheldMessages(this.thread);
    } catch (err) {
      console.warn("tsunagu-chat: held messages unavailable", err);
      return;
    }
    if (this.client !== client || rows === null) return;
    const delivered = new Set(this.messages.map((m) => m.client_msg_id).filter(Boolean));
    const before = new Map(this.withheld.map((w) => [w.withheld?.id, w]));
    const restored = rows
      .filter((r) => !r.edit_of && r.status !== "released" && !(r.client_msg_id && delivered.has(r.client_msg_id)))
      .map((r) => ({
        item: { client_msg_id: r.client_msg_id || r.id, thread: r.thread, body: r.body, created_at: r.created_at },
        withheld: { id: r.id, status: r.status, action: r.action },
        moderation: r.moderation,
        rejected: r.status === "rejected" || Boolean(before.get(r.id)?.rejected),
        addedAt: 0,
      }));
    // The user's edits still waiting for a moderator (they are not applied until released).
    // (An edit held after the request left is not in the answer yet: it is kept.)
    const listed = new Set(rows.map((r) => r.id));
    this.heldEdits = new Map([
      ...rows.filter((r) => r.edit_of && r.status === "held").map((r) => [r.id, r.edit_of]),
      ...[...this.heldEdits].filter(([wid]) => !listed.has(wid)),
    ]);
    const ids = new Set(restored.map((w) => w.withheld.id));
    // Keep only what was held after the request left (the answer may not know it yet).
    const newer = this.withheld.filter((w) => !ids.has(w.withheld?.id) && (w.addedAt || 0) >= since);
    this.withheld = [...restored, ...newer];
    this.render();
  }

  /**
   * Read the loaded messages again (history pages over the loaded range) and the read
   * positions, after a reconnect: an edit, deletion or thanks made while the socket was
   * down reaches the page only this way. Merged by `rev` (`mergeMessage` keeps the newer
   * copy), so a live `update` that overtakes the answer is not undone.
   */
  async _resync(client) {
    const thread = this.thread;
    const run = (this._resyncRun || 0) + 1;
    this._resyncRun = run;
    const stale = () => this.client !== client || this._resyncRun !== run;
    try {
      const loaded = this.messages;
      const fresh = [];
      if (loaded.length) {
        const last = loaded[loaded.length - 1].seq;
        let after = loaded[0].seq - 1;
        for (let guard = 0; guard < 100 && after < last; guard += 1) {
          const page = await client.history(thread, { afterSeq: after, limit: client.limits?.history_max_limit || 100 });
          if (stale()) return;
          const msgs = page.messages || [];
          if (!msgs.length) break;
          fresh.push(...msgs.filter((m) => m.seq <= last));
          after = msgs[msgs.length - 1].seq;
        }
      }
      const info = await client.thread(thread);
      if (stale()) return;
      // Only messages the page holds: newer ones come in order through the SDK (resume).
      const known = new Set(this.messages.map((m) => m.id));
      for (const m of fresh) if (known.has(m.id)) this.messages = mergeMessage(this.messages, m);
      if (info) {
        this.threadInfo = { ...this.threadInfo, ...info };
        this.participants = info.participants || this.participants;
        for (const p of info.participants || []) {
          if (p.user_id === this.me) this.myRead = Math.max(this.myRead, p.read_seq || 0);
          else this.readBy.set(p.user_id, Math.max(this.readBy.get(p.user_id) || 0, p.read_seq || 0));
        }
      }
      this.render();
    } catch (err) {
      // Best effort: the next push or reconnect brings the page up to date.
      console.warn("tsunagu-chat: could not refresh after reconnecting", errorDetail(err), err);
    }
  }

  /** Load the page before the earliest message shown, keeping what is on screen in place. */
  async _loadEarlier() {
    const client = this.client;
    if (!client || !this._opened || this.earlier.loading || !client.hasEarlier(this.thread)) return;
    const hadFocus = this.shadowRoot.activeElement?.dataset?.key === "earlier";
    this.earlier.loading = true;
    this.render({ keepBottom: true });
    try {
      const { messages } = await client.loadEarlier(this.thread, { limit: this.pageSize });
      if (this.client !== client) return;
      for (const m of messages) this.messages = mergeMessage(this.messages, m);
      this.earlier.loaded = true;
    } catch (err) {
      if (this.client === client) this._fail(err);
    } finally {
      if (this.client === client) {
        this.earlier.loading = false;
        // At the start the button goes: keep keyboard focus in the list.
        this.render({ keepBottom: true, focus: hadFocus && !client.hasEarlier(this.thread) ? "list" : null });
      }
    }
  }

  async _loadInbox(client) {
    try {
      const data = await client.notifications();
      if (this.client !== client || data === null) return;
      const items = data.notifications || data.items || [];
      const unread = typeof data.unread === "number" ? data.unread : items.filter((i) => !isRead(i)).length;
      this.notifications = { items, unread };
      this.render();
    } catch (err) {
      console.warn("tsunagu-chat: notifications unavailable", err);
    }
  }

  _scheduleRead() {
    if (!this.client || this._readTimer) return;
    this._readTimer = setTimeout(() => {
      this._readTimer = null;
      const top = this.messages.length ? this.messages[this.messages.length - 1].seq : 0;
      if (top > this.myRead && document.visibilityState !== "hidden" && this.client?.state === "open") {
        this.myRead = top;
        this.client.read(this.thread, top).catch(() => {});
      }
    }, 300);
  }

  // --- actions

  /** The server's limits (hello's), or the defaults before the first hello. */
  get limits() {
    return { ...DEFAULT_LIMITS, ...(this.client?.limits || {}) };
  }

  _submit(ev) {
    ev.preventDefault();
    const ta = this._parts.textarea;
    const body = ta.value.trim();
    if (!body || !this.client) return;
    // Over the server's limits: refused here, the text kept (the server would refuse it, or
    // close the socket for a frame over max_frame_bytes).
    const fit = bodyFit(body, this.limits);
    if (fit.over || fit.tooBig) {
      this._flash({ say: (t) => (fit.over ? t.errors.tooLong(fit.max) : t.errors.too_large) }, 8000);
      this.render({ focus: "composer" });
      return;
    }
    if (this.editing) {
      // The edit stays open, with its text, until the server has applied it: a failed edit
      // (rate limited, disconnected, …) can be saved again.
      const id = this.editing;
      if (this._saving) return;
      this._saving = id;
      const client = this.client;
      client.edit(this.thread, id, body).then((ok) => {
        if (this.client !== client) return;
        if (this.editing === id) {
          this.editing = null;
          if (ta.value.trim() === body) ta.value = "";
          this._updateCounter();
        }
        this.messages = mergeMessage(this.messages, ok.message);
        if (ok.withheld) {
          // Not applied: held for a moderator (or blocked). Say so, or the edit seems lost.
          if (ok.withheld.status === "held") this.heldEdits.set(ok.withheld.id, id);
          const t = this.t;
          const warning = pickText(ok.moderation?.warning, this.locale);
          const text = ok.withheld.action === "block" ? t.editBlocked : t.editHeld;
          this._flash(`⚠ ${text}${warning ? ` ${warning}` : ""}`, 15000);
        }
      }).catch((err) => {
        if (this.client === client) this._fail(err, { body });
      }).finally(() => {
        if (this.client !== client) return;
        this._saving = null;
        const focused = this.shadowRoot.activeElement === ta;
        this.render(focused ? { focus: "composer" } : {});
      });
      this.render({ focus: "composer" });
      return;
    }
    try {
      this.client.send(this.thread, body);
    } catch (err) {
      this._fail(err, { body });
      return;
    }
    ta.value = "";
    this._updateCounter();
    // The user's own message is always brought into view, however tall it is.
    this.render({ scroll: "end", focus: "composer" });
  }

  _keydown(ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      this._submit(ev);
    } else if (ev.key === "Escape" && this.editing) {
      this._cancelEdit();
    }
  }

  _startEdit(msg) {
    this.editing = msg.id;
    this.render();
    const ta = this._parts.textarea;
    ta.value = msg.body;
    this._updateCounter();
    ta.focus();
  }

  _cancelEdit() {
    this.editing = null;
    this._parts.textarea.value = "";
    this._updateCounter();
    this.render({ focus: "composer" });
  }

  /**
   * The character counter under the composer: shown from 80 % of the server's limit, marked
   * (and the composer `aria-invalid`) over it. Updated on input, without a render.
   */
  _updateCounter() {
    const p = this._parts;
    if (!p) return;
    const fit = bodyFit(p.textarea.value.trim(), this.limits);
    const show = fit.chars >= Math.floor(fit.max * 0.8) || fit.tooBig;
    const bad = fit.over || fit.tooBig;
    p.counter.hidden = !show;
    const text = show ? this.t.counter(fit.chars, fit.max) : "";
    if (p.counter.textContent !== text) p.counter.textContent = text;
    p.counter.classList.toggle("over", bad);
    if (bad) p.textarea.setAttribute("aria-invalid", "true");
    else p.textarea.removeAttribute("aria-invalid");
    const describedBy = [this.editing ? "editing-label" : null, show ? "counter" : null].filter(Boolean).join(" ");
    if (describedBy) p.textarea.setAttribute("aria-describedby", describedBy);
    else p.textarea.removeAttribute("aria-describedby");
  }

  _delete(msg) {
    if (this.confirmingDelete !== msg.id) {
      this.confirmingDelete = msg.id;
      this.render({ focus: `del-${msg.id}` });
      return;
    }
    this.confirmingDelete = null;
    this.client.delete(this.thread, msg.id).then((ok) => {
      this.messages = mergeMessage(this.messages, ok.message);
      this.render();
    }).catch((err) => this._fail(err));
  }

  _thank(msg) {
    this.client.thank(this.thread, msg.id).then((ok) => {
      this.thankedByMe.add(msg.id);
      this.messages = mergeMessage(this.messages, ok.message);
      this.render({ focus: `thx-${msg.id}` });
    }).catch((err) => this._fail(err));
  }

  /** The user's text for an error (by its code, in the widget's language). */
  _errorText(err, body) {
    return errorText(err, this.locale, { body, maxBodyChars: this.client?.limits?.max_body_chars });
  }

  /**
   * Show an error of the server or the SDK in the banner, as a localized text; the raw
   * message goes to the console and the banner's title (for support). A rate limit stays
   * up for its retry_after.
   */
  _fail(err, { body } = {}) {
    console.warn("tsunagu-chat:", errorDetail(err), err);
    const wait = Number(err?.retry_after) * 1000;
    this._flash({ err, body }, err?.code === "rate_limited" && wait > 0 ? Math.min(60000, Math.max(4000, wait)) : 6000);
  }

  /**
   * Show a text in the banner for `ms`: a string, `{err, body}` (an error, put into words at
   * each render) or `{say: (texts) => string}` (a text of the widget's, in its language).
   */
  _flash(what, ms = 4000) {
    const error = typeof what === "string" ? { text: what } : what;
    this._error = error;
    this.render();
    setTimeout(() => {
      if (this._error !== error) return;
      this._error = null;
      this.render();
    }, ms);
  }

  _toggleInbox() {
    this.inboxOpen = !this.inboxOpen;
    this.render({ focus: this.inboxOpen ? "inbox" : "bell" });
  }

  _markRead(n) {
    n.read = true;
    this.notifications.unread = Math.max(0, this.notifications.unread - 1);
    this.render({ focus: "inbox" });
    this.client.markNotificationRead(n.id).then((data) => {
      if (data && typeof data.unread === "number" && this.notifications) {
        this.notifications.unread = data.unread;
        this.render({ focus: "inbox" });
      }
    }).catch(() => {});
  }

  // --- rendering

  /** Build the parts that live as long as the element (the composer keeps its text and IME state). */
  _skeleton() {
    if (this._parts) return this._parts;
    const parts = {
      root: h("div", { class: "root" }),
      header: h("header", {}),
      banner: h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true }),
      list: h("div", { class: "list", role: "log", "aria-live": "polite", tabindex: "0", "data-key": "list" }),
      typing: h("div", { class: "typing", role: "status", "aria-live": "polite" }),
      editingLabel: h("div", { class: "editing-label", id: "editing-label", hidden: true }),
      inboxBox: h("div", { style: "display:contents" }),
    };
    parts.textarea = h("textarea", {
      rows: "2", "data-key": "composer",
      onkeydown: (e) => this._keydown(e),
      oninput: () => {
        this._updateCounter();
        if (this.client && !this.editing && parts.textarea.value.trim()) this.client.typing(this.thread);
      },
    });
    parts.counter = h("div", { class: "counter", id: "counter", hidden: true });
    parts.cancel = h("button", { type: "button", "data-key": "cancel-edit", hidden: true, onclick: () => this._cancelEdit() });
    parts.sendButton = h("button", { type: "submit", "data-key": "send" });
    parts.form = h("form", { onsubmit: (e) => this._submit(e) }, parts.textarea, parts.cancel, parts.sendButton);
    this._listEvents(parts.list);
    parts.root.append(parts.header, parts.banner, parts.list, parts.typing, parts.editingLabel, parts.form, parts.counter, parts.inboxBox);
    this.shadowRoot.replaceChildren(h("style", { text: STYLE }), parts.root);
    this._parts = parts;
    return parts;
  }

  render({ scroll = false, focus = null, keepBottom = false } = {}) {
    const root = this.shadowRoot;
    const t = this.t;
    const p = this._skeleton();
    const list = p.list;
    const hadRows = list.firstChild !== null;
    const nearBottom = !hadRows || list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const oldScroll = list.scrollTop;
    const fromBottom = list.scrollHeight - list.scrollTop;
    const active = root.activeElement;
    const focusKey = focus || (active && active.dataset && active !== p.textarea ? active.dataset.key : null);

    p.root.lang = this.locale;
    reconcile(p.header, this._header());
    const banner = this._banner();
    p.banner.hidden = !banner;
    if (banner) {
      p.banner.className = `banner${banner.bad ? " bad" : ""}`;
      p.banner.dataset.state = this.client?.state || "";
      // Set only when it changed: the banner is a live region, re-setting the same text
      // would have it read out again at every render.
      if (p.banner.textContent !== banner.text) p.banner.textContent = banner.text;
    } else if (p.banner.textContent) p.banner.textContent = "";
    // The raw error, for support (the text shown is the localized one).
    if (banner?.detail) p.banner.title = banner.detail;
    else p.banner.removeAttribute("title");
    if (banner?.code) p.banner.dataset.errorCode = banner.code;
    else delete p.banner.dataset.errorCode;
    list.setAttribute("aria-label", t.messages);
    reconcile(list, this._rows());
    const typing = [...this.typingUsers.keys()].map((u) => this.nameOf(u));
    const typingText = typing.length ? t.typing(typing.join("・")) : "";
    if (p.typing.textContent !== typingText) p.typing.textContent = typingText;
    p.editingLabel.hidden = !this.editing;
    if (p.editingLabel.textContent !== t.editing) p.editingLabel.textContent = t.editing;
    // The composer is updated in place, never rebuilt.
    const disabled = !this.client || this.client.state === "unauthorized";
    p.textarea.disabled = disabled;
    p.textarea.placeholder = t.composer;
    p.textarea.setAttribute("aria-label", this.editing ? t.editing : t.composer);
    this._updateCounter();
    p.form.setAttribute("aria-label", t.composer);
    p.cancel.hidden = !this.editing;
    p.cancel.textContent = t.cancel;
    p.sendButton.disabled = disabled;
    // While an edit is being saved, a second press does not send it again.
    if (this._saving) p.sendButton.setAttribute("aria-busy", "true");
    else p.sendButton.removeAttribute("aria-busy");
    p.sendButton.textContent = this.editing ? t.save : t.send;
    reconcile(p.inboxBox, this.inboxOpen && this.notifications ? [keyed("inbox", this._inbox())] : []);

    // Older messages were added above: keep the same content at the top of the view.
    if (keepBottom && hadRows) list.scrollTop = list.scrollHeight - fromBottom;
    else list.scrollTop = scroll === "end" || (scroll && nearBottom) ? list.scrollHeight : oldScroll;
    list._prevTop = list.scrollTop;
    if (focusKey) root.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)?.focus({ preventScroll: true });
  }

  _header() {
    const t = this.t;
    const info = this.threadInfo;
    const others = this.participants.filter((p) => p.user_id !== this.me);
    const people = h("div", { class: "people" }, others.map((p) => {
      const status = this.client?.presence?.[p.user_id] === "online" ? "online" : "offline";
      return h("span", { "data-presence": p.user_id },
        h("span", { class: `dot ${status}`, "aria-hidden": "true" }),
        `${this.nameOf(p.user_id)} `, t[status]);
    }));
    const kids = [
      keyed("title", h("div", { class: "title", title: info?.title || "" }, info?.title || "…")),
      info?.stage ? keyed("stage", h("span", { class: "stage" }, t.stages[info.stage] || info.stage)) : null,
      keyed("people", people),
    ];
    if (this.notifications) {
      const n = this.notifications.unread;
      kids.push(keyed("bell", h("button", {
        class: "bell", type: "button", "data-key": "bell", "aria-label": t.inboxLabel(n),
        "aria-expanded": this.inboxOpen ? "true" : "false", onclick: () => this._toggleInbox(),
      }, "🔔", n ? h("span", { class: "badge", "aria-hidden": "true" }, n > 99 ? "99+" : String(n)) : null)));
    }
    return kids.filter(Boolean);
  }

  _banner() {
    const t = this.t;
    const state = this.client?.state;
    const unsent = this.client ? this.client.pending(this.thread).length : 0;
    const lines = [];
    let bad = false;
    if (state === "connecting") lines.push(t.connecting);
    if (state === "reconnecting") lines.push(t.reconnecting);
    if (state === "unauthorized") {
      lines.push(t.unauthorized);
      bad = true;
    }
    if (unsent && state !== "open") lines.push(t.unsent(unsent));
    const { err, text, body, say } = this._error || {};
    if (err) lines.push(this._errorText(err, body));
    else if (say) lines.push(say(t));
    else if (text) lines.push(text);
    if (this._error) bad = true;
    if (!lines.length) return null;
    return { text: lines.join(" "), bad, detail: errorDetail(err), code: err?.code };
  }

  /** The list's own listeners, set once (the list element lives as long as the widget). */
  _listEvents(list) {
    // The user scrolling up to the top loads the page before (the button does the same by
    // keyboard). Scrolls the widget makes itself (focus, keeping the position) do not.
    const intent = () => {
      this._scrollIntent = Date.now();
    };
    for (const type of ["wheel", "touchmove", "pointerdown", "keydown"]) list.addEventListener(type, intent, { passive: true });
    list.addEventListener("scroll", () => {
      const top = list.scrollTop;
      const prev = list._prevTop;
      list._prevTop = top;
      const byUser = Date.now() - (this._scrollIntent || 0) < 1500;
      if (byUser && prev !== undefined && top < prev && top < 48) this._loadEarlier();
    });
  }

  /** The time zone dates are shown in: the user's (hello, else the token's) if valid. */
  get timeZone() {
    const tz = this.client?.user?.tz ?? tokenClaims(this.getAttribute("token") || "").tz;
    return validTimeZone(tz, DEFAULT_TZ);
  }

  /** Date formatters for the locale and zone, made once per (locale, zone). */
  _formats() {
    const t = this.t;
    const tz = this.timeZone;
    const id = `${t.tag}|${tz}`;
    if (this._fmt?.id !== id) {
      this._fmt = {
        id,
        day: new Intl.DateTimeFormat(t.tag, { ...t.dateFmt, timeZone: tz }),
        key: new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit", timeZone: tz }),
        time: new Intl.DateTimeFormat(t.tag, { hour: "2-digit", minute: "2-digit", timeZone: tz }),
      };
    }
    return this._fmt;
  }

  /** The rows of the message list, in order, each keyed (see `reconcile`). */
  _rows() {
    const t = this.t;
    const { day: dayFmt, key: keyFmt, time: timeFmt } = this._formats();
    const list = [];
    if (this._opened && this.client?.hasEarlier(this.thread)) {
      const busy = this.earlier.loading ? "true" : undefined;
      list.push(keyed("earlier", h("button", {
        type: "button", class: "earlier", "data-key": "earlier", "aria-label": t.earlierLabel,
        "aria-busy": busy, "aria-disabled": busy, onclick: () => this._loadEarlier(),
      }, busy ? t.loadingEarlier : `↑ ${t.earlier}`)));
    } else if (this.earlier.loaded) {
      list.push(keyed("start", h("div", { class: "start", role: "note" }, t.start)));
    }
    const otherRead = Math.max(0, ...[...this.readBy.values()]);
    // The user's own rows that are not (yet) stored messages go where they were written:
    // withheld by moderation, refused, and unsent (the outbox).
    const locals = [
      ...this.withheld.map((w) => ({
        kind: "withheld", w, client_msg_id: w.item.client_msg_id, key: w.item.client_msg_id || w.item.id,
        at: new Date(w.item.created_at || Date.now()),
      })),
      ...this.failed.map((f) => ({ kind: "failed", f, client_msg_id: f.item.client_msg_id, key: f.item.client_msg_id, at: new Date(f.item.created_at || Date.now()) })),
      ...(this.client ? this.client.pending(this.thread) : []).map((item) => ({
        kind: "pending", item, client_msg_id: item.client_msg_id, key: item.client_msg_id, at: new Date(item.created_at || Date.now()),
      })),
    ];
    for (const e of timeline(this.messages, locals, (d) => keyFmt.format(d))) {
      if (e.type === "day") {
        list.push(keyed(`day:${e.key}`, h("div", { class: "day", role: "separator", "data-day": e.key }, dayFmt.format(e.date))));
      } else if (e.type === "message") {
        const m = e.message;
        list.push(keyed(`msg:${m.id}`, m.kind === "system" ? this._system(m, timeFmt) : this._message(m, timeFmt, otherRead)));
      } else if (e.local.kind === "withheld") {
        const w = e.local.w;
        const blocked = w.rejected || (w.withheld?.action || w.moderation?.action) === "block";
        const why = w.rejected ? t.rejected : blocked ? t.blocked : t.held;
        list.push(keyed(`local:${e.local.key}`, this._local(w.item, blocked ? "blocked" : "withheld", why, w.moderation, timeFmt)));
      } else if (e.local.kind === "failed") {
        const f = e.local.f;
        list.push(keyed(`local:${e.local.key}`,
          this._local(f.item, "failed", `${t.failed}: ${this._errorText(f.error, f.item.body)}`, null, timeFmt, f.error)));
      } else {
        list.push(keyed(`local:${e.local.key}`, this._local(e.local.item, "pending", t.sending, null, timeFmt)));
      }
    }
    return list;
  }

  _system(m, timeFmt) {
    // Contract events carry their text in both languages in `data` ({ja, en, event}).
    const text = (m.data && typeof m.data[this.locale] === "string" && m.data[this.locale]) || m.body;
    return h("div", { class: "system", role: "note", "data-seq": m.seq, "data-id": m.id, "data-event": m.data?.event, "aria-label": `${this.t.system}: ${text}` },
      text, " ", h("span", { class: "meta" }, timeFmt.format(new Date(m.created_at))));
  }

  _message(m, timeFmt, otherRead) {
    const t = this.t;
    const mine = m.sender === this.me;
    const who = mine ? t.you : this.nameOf(m.sender);
    const box = h("div", {
      class: `msg ${mine ? "mine" : "theirs"}`, "data-seq": m.seq, "data-id": m.id, "data-sender": m.sender,
      "data-status": mine ? (m.seq <= otherRead ? "read" : "sent") : undefined,
      "data-masked": m.masked ? "true" : undefined, role: "article",
      "aria-label": `${who} ${timeFmt.format(new Date(m.created_at))}`,
    });
    box.append(h("div", { class: "who" }, who));
    if (m.deleted) {
      box.append(h("div", { class: "bubble deleted" }, t.deleted));
    } else if (m.masked) {
      const bubble = h("div", { class: "bubble" });
      for (const part of maskedParts(m.body)) {
        bubble.append(part.masked
          ? h("span", { class: "masked-span", role: "img", "aria-label": t.maskedSpan, title: t.maskedSpan }, part.text)
          : part.text);
      }
      box.append(bubble, h("div", { class: "masked-note", role: "note" }, `🛡 ${t.masked}`));
    } else {
      box.append(h("div", { class: "bubble" }, m.body));
      if (mine && m.moderation && m.moderation.action === "mask") {
        box.append(h("div", { class: "masked-note", role: "note" }, `🛡 ${t.maskedForOthers}`));
      }
    }
    const warning = pickText(warningFor(m.moderation), this.locale);
    if (warning && !m.deleted) box.append(h("div", { class: "warn", role: "note" }, `⚠ ${t.warning}: ${warning}`));
    if (mine && !m.deleted && [...this.heldEdits.values()].includes(m.id)) {
      box.append(h("div", { class: "warn edit-pending", role: "note" }, `⏳ ${t.editPending}`));
    }
    const meta = h("div", { class: "meta" }, timeFmt.format(new Date(m.created_at)));
    if (m.edited_at && !m.deleted) meta.append(h("span", {}, `(${t.edited})`));
    if (mine && !m.deleted) {
      const read = m.seq <= otherRead;
      meta.append(h("span", { class: `state ${read ? "read" : "sent"}` }, read ? `✓✓ ${t.read}` : `✓ ${t.sent}`));
    }
    const actions = h("div", { class: "actions" });
    if (!m.deleted && m.kind === "user") {
      if (mine) {
        actions.append(
          h("button", { type: "button", "data-key": `edit-${m.id}`, "aria-label": `${t.edit}: ${m.body.slice(0, 30)}`, onclick: () => this._startEdit(m) }, t.edit),
          h("button", { type: "button", "data-key": `del-${m.id}`, "aria-label": `${this.confirmingDelete === m.id ? t.confirmDelete : t.delete}: ${m.body.slice(0, 30)}`, onclick: () => this._delete(m) },
            this.confirmingDelete === m.id ? `${t.confirmDelete}?` : t.delete),
        );
        if (m.thanks) meta.append(h("span", {}, `💐 ${t.thanksLabel(m.thanks)}`));
      } else {
        const n = m.thanks || 0;
        actions.append(h("button", {
          type: "button", class: "thanks", "data-key": `thx-${m.id}`, "aria-pressed": this.thankedByMe.has(m.id) ? "true" : "false",
          "aria-label": t.thanksLabel(n), onclick: () => this._thank(m),
        }, `💐 ${t.thanks}${n ? ` ${n}` : ""}`));
      }
    }
    meta.append(actions);
    box.append(meta);
    return box;
  }

  _local(item, kind, stateText, moderation, timeFmt, error = null) {
    const t = this.t;
    const box = h("div", { class: `msg mine ${kind}`, "data-client-msg-id": item.client_msg_id, "data-status": kind, role: "article", "aria-label": `${t.you}: ${stateText}` },
      h("div", { class: "who" }, t.you),
      h("div", { class: "bubble" }, item.body));
    const warning = pickText(moderation?.warning, this.locale);
    if (kind === "withheld" || kind === "blocked") box.append(h("div", { class: "warn", role: "note" }, `⚠ ${stateText}${warning ? ` ${warning}` : ""}`));
    const meta = h("div", { class: "meta" }, timeFmt.format(new Date(item.created_at || Date.now())));
    if (kind === "pending") meta.append(h("span", { class: "state pending" }, `⏳ ${stateText}`));
    if (kind === "failed") {
      // The server's or the SDK's own message, for support: on hover, not in the text.
      meta.append(h("span", { class: "state failed", title: errorDetail(error) || undefined, "data-error-code": error?.code }, stateText));
      meta.append(h("button", { type: "button", onclick: () => {
        this.failed = this.failed.filter((f) => f.item !== item);
        this.render();
      } }, t.discard));
    }
    box.append(meta);
    return box;
  }

  _inbox() {
    const t = this.t;
    const items = this.notifications.items;
    const panel = h("section", { class: "inbox", role: "dialog", "aria-label": t.inbox, tabindex: "-1", "data-key": "inbox",
      onkeydown: (e) => { if (e.key === "Escape") this._toggleInbox(); } },
      h("h2", {}, t.inbox, h("button", { type: "button", onclick: () => this._toggleInbox(), "aria-label": t.close }, "✕")));
    if (!items.length) panel.append(h("p", { style: "padding: 8px 12px; margin: 0; font-size: 13px;" }, t.inboxEmpty));
    const ul = h("ul", {});
    for (const n of items) {
      const read = isRead(n);
      ul.append(h("li", { class: read ? "" : "unread" },
        h("div", {}, pickText(n.title || n.subject || n.kind, this.locale)),
        n.body || n.text ? h("div", {}, pickText(n.body || n.text, this.locale)) : null,
        read ? null : h("button", { type: "button", onclick: () => this._markRead(n) }, t.markRead)));
    }
    panel.append(ul);
    return panel;
  }
}

function isRead(n) {
  return Boolean(n.read || n.read_at || n.status === "read" || n.status === "archived");
}

if (globalThis.customElements && !customElements.get("tsunagu-chat")) customElements.define("tsunagu-chat", TsunaguChat);
