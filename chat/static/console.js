// The moderator console: review queue, thread view with findings highlighted in context,
// decisions with notes, per-rule precision. Needs a token with the `moderator` role, given
// in the URL fragment (#token=…&locale=ja) so that it never reaches a server log.
//
// HTTP (see docs/browser.md): GET /v1/moderation/queue[?status=], POST /v1/moderation/items/{id}/claim,
// POST /v1/moderation/items/{id}/decide {decision, note, wrong_rules?}, GET /v1/moderation/threads/{id},
// GET /v1/moderation/precision, GET /v1/moderation/restrictions, DELETE
// /v1/moderation/restrictions/{user} {note}; `review` frames over the WebSocket refresh the queue.
// Times are shown in the token's `tz` (an IANA zone), else Asia/Tokyo.

import { errorDetail, errorTextFrom, h, keyed, reconcile, validTimeZone } from "./dom.js";
import { TsunaguClient, tokenClaims } from "./tsunagu.js";

export const DECISIONS = ["dismiss", "warn", "restrict", "release", "reject", "escalate"];
// Decisions that need a held message (the API answers 409 otherwise).
const HELD_ONLY = new Set(["release", "reject"]);
// The queue's status filter: "" is the API's default (open and claimed items).
export const QUEUE_FILTERS = ["", "open", "claimed", "escalated", "decided"];

// The thread log is read a page at a time (the review API's default); a server that does
// not page with `before_seq` is asked for its largest page instead.
const LOG_PAGE = 200;
const LOG_MAX = 1000;

export const TEXTS = {
  ja: {
    title: "tsunagu モデレーション",
    queue: "レビュー待ち",
    precision: "ルール別の精度",
    refresh: "更新",
    empty: "レビュー待ちの項目はありません",
    select: "左の一覧から項目を選んでください",
    risk: "リスク",
    sender: "送信者",
    thread: "スレッド",
    created: "検出日時",
    status: "状態",
    claimedBy: (who) => `担当: ${who}`,
    claim: "担当する",
    claimed: "あなたが担当しています",
    message: "メッセージ（検出箇所を強調）",
    findings: "検出内容",
    moreFindings: (shown, total) => `検出 ${total} 件のうち最初の ${shown} 件を表示しています（処置は全件に適用されています。原文は記録に残っています）`,
    category: "分類",
    rule: "ルール",
    severity: "重大度",
    explanation: "説明",
    log: "スレッドの記録（閲覧は監査ログに記録されます）",
    logEmpty: "記録はありません",
    decision: "判定",
    note: "メモ（判定の理由。監査ログに残ります）",
    submit: "判定を送信",
    decided: "判定を記録しました",
    decisions: {
      dismiss: "誤検知として却下",
      warn: "違反を確認し、警告する",
      restrict: "違反を確認し、利用を制限する",
      release: "保留中のメッセージを配信する",
      reject: "違反を確認し、保留中のメッセージを配信しない",
      escalate: "紛争担当へエスカレーション",
    },
    categories: {
      contact_exchange: "連絡先の交換",
      off_platform_deal: "サイト外取引",
      personal_data_request: "個人情報の要求",
      expense_demand: "費用の要求",
    },
    confirmed: "確認",
    dismissed: "誤検知",
    other: "未判定",
    precisionHelp: "誤検知: 却下された項目、または判定で「誤検知」と指定されたルール。未判定: 配信のみの判定など。精度 = 確認 ÷ (確認 + 誤検知)",
    earlier: "前のメッセージ",
    earlierMessages: "同じ送信者の前のメッセージ（分割された検出箇所を強調）",
    earlierPiece: (i) => `前のメッセージ #${i}`,
    releaseOnlyHeld: "（保留中のメッセージのみ）",
    wrongRules: "誤っていた検知（ルールごと。精度の集計に使われます）",
    wrongRule: "誤検知",
    escalatedBy: "エスカレーションした人",
    escalatedOnly: "この項目は紛争担当へエスカレーション済みです。判定できるのは紛争担当または管理者だけです。",
    alreadyEscalated: "（エスカレーション済み）",
    alreadyDecided: "この項目はすでに判定済みです。",
    statusFilter: "表示する状態",
    filters: { "": "未処理（未対応・対応中）", open: "未対応", claimed: "対応中", escalated: "エスカレーション済み", decided: "判定済み" },
    statuses: { open: "未対応", claimed: "対応中", decided: "判定済み", held: "保留中", escalated: "エスカレーション済み（紛争担当）" },
    actions: { flag: "要確認", mask: "伏せ字", hold: "保留", block: "ブロック", allow: "許可" },
    precisionCol: "精度",
    restrictions: "制限中のユーザー",
    noRestrictions: "制限中のユーザーはいません",
    user: "ユーザー",
    reason: "理由",
    restrictedBy: "制限した人",
    since: "日時",
    lift: "制限を解除",
    liftNote: "解除の理由（監査ログに残ります）",
    lifted: "制限を解除しました",
    noPrecision: "まだ判定がありません",
    noApi: "レビューAPIがこのサーバーにはありません（moderation が未導入です）。",
    forbidden: "この画面にはモデレーター権限のトークンが必要です。",
    needToken: "モデレーターのトークンを貼り付けてください",
    open: "接続中",
    closed: "未接続",
    reconnecting: "再接続中",
    newItem: "新しい項目があります",
    chooseDecision: "判定を選んでください。",
    loadEarlier: "以前のメッセージを読み込む",
    loadingEarlier: "読み込み中…",
    logStart: "スレッドの最初から表示しています",
    // Errors, by their `code` (docs/protocol.md's table, HTTP statuses, the SDK's own codes);
    // the server's English message is kept in the notice's title, for support.
    errors: {
      generic: "エラーが発生しました。もう一度お試しください。",
      bad_request: "この操作はできません（入力内容を確認してください）。",
      bad_frame: "この操作はできません（入力内容を確認してください）。",
      forbidden: "この操作を行う権限がありません。",
      not_found: "項目が見つかりません。すでに処理された可能性があります。",
      conflict: "この項目の状態が変わったため操作できません（判定済み・他の担当者・保留中でない など）。一覧を更新してください。",
      too_large: "データが大きすぎます。",
      rate_limited: (s) => (s ? `操作が続いたため制限中です。${s}秒ほど待ってからもう一度お試しください。`
        : "操作が続いたため制限中です。少し待ってからもう一度お試しください。"),
      unavailable: "サーバーが一時的に利用できません。しばらくしてからもう一度お試しください。",
      internal: "サーバーでエラーが発生しました。もう一度お試しください。",
      unauthorized: "トークンの有効期限が切れました。新しいトークンで開き直してください。",
      network: "サーバーと通信できませんでした。ネットワーク接続を確認してください。",
      timeout: "サーバーから応答がありませんでした。もう一度お試しください。",
      token: "トークンを取得できませんでした。開き直してください。",
      disconnected: "接続が切れています。",
      closed: "接続を終了しました。ページを再読み込みしてください。",
      unsupported: "このブラウザーでは利用できません。",
    },
    tag: "ja-JP",
  },
  en: {
    title: "tsunagu moderation",
    queue: "Review queue",
    precision: "Per-rule precision",
    refresh: "Refresh",
    empty: "Nothing to review",
    select: "Pick an item from the queue",
    risk: "Risk",
    sender: "Sender",
    thread: "Thread",
    created: "Detected",
    status: "Status",
    claimedBy: (who) => `Claimed by ${who}`,
    claim: "Claim",
    claimed: "You have claimed this item",
    message: "Message (findings highlighted)",
    findings: "Findings",
    moreFindings: (shown, total) => `Showing the first ${shown} of ${total} findings (the action applies to all of them; the original text is kept).`,
    category: "Category",
    rule: "Rule",
    severity: "Severity",
    explanation: "Explanation",
    log: "Thread log (your read is recorded in the audit log)",
    logEmpty: "No messages",
    decision: "Decision",
    note: "Note (why; kept in the audit log)",
    submit: "Record decision",
    decided: "Decision recorded",
    decisions: {
      dismiss: "Dismiss as a false positive",
      warn: "Confirm and warn the user",
      restrict: "Confirm and restrict the user",
      release: "Release the held message",
      reject: "Confirm and reject the held message",
      escalate: "Escalate to dispute staff",
    },
    categories: {
      contact_exchange: "Contact exchange",
      off_platform_deal: "Off-platform deal",
      personal_data_request: "Personal data request",
      expense_demand: "Expense demand",
    },
    confirmed: "Confirmed",
    dismissed: "False positive",
    other: "Not judged",
    precisionHelp: "False positive: the item was dismissed or the decision marked the rule as wrong. Not judged: e.g. a release alone. Precision = confirmed / (confirmed + false positive)",
    earlier: "earlier message",
    earlierMessages: "The sender's earlier messages (split findings highlighted)",
    earlierPiece: (i) => `Earlier message #${i}`,
    releaseOnlyHeld: "(held messages only)",
    wrongRules: "Findings that were wrong (per rule; counted in the precision)",
    wrongRule: "This rule was wrong",
    escalatedBy: "Escalated by",
    escalatedOnly: "This item was escalated to dispute staff: only dispute staff or an admin can decide it.",
    alreadyEscalated: "(already escalated)",
    alreadyDecided: "This item has already been decided.",
    statusFilter: "Show status",
    filters: { "": "To review (open and claimed)", open: "open", claimed: "claimed", escalated: "escalated", decided: "decided" },
    statuses: { open: "open", claimed: "claimed", decided: "decided", held: "held", escalated: "escalated (dispute staff)" },
    actions: { flag: "flagged", mask: "masked", hold: "held", block: "blocked", allow: "allowed" },
    precisionCol: "Precision",
    restrictions: "Restricted users",
    noRestrictions: "No user is restricted",
    user: "User",
    reason: "Reason",
    restrictedBy: "Restricted by",
    since: "Since",
    lift: "Lift restriction",
    liftNote: "Why it is lifted (kept in the audit log)",
    lifted: "Restriction lifted",
    noPrecision: "No decisions yet",
    noApi: "This server has no review API (moderation is not installed).",
    forbidden: "This console needs a token with the moderator role.",
    needToken: "Paste a moderator token",
    open: "connected",
    closed: "offline",
    reconnecting: "reconnecting",
    newItem: "New items arrived",
    chooseDecision: "Choose a decision.",
    loadEarlier: "Load earlier messages",
    loadingEarlier: "Loading…",
    logStart: "Showing the thread from its start",
    errors: {
      generic: "Something went wrong. Please try again.",
      bad_request: "This is not possible (check what you entered).",
      bad_frame: "This is not possible (check what you entered).",
      forbidden: "You are not allowed to do this.",
      not_found: "The item was not found. It may have been handled already.",
      conflict: "The item changed and this is no longer possible (decided, claimed by someone else, or not held). Refresh the queue.",
      too_large: "This is too large.",
      rate_limited: (s) => (s ? `Too many actions in a short time. Please wait about ${s} seconds and try again.`
        : "Too many actions in a short time. Please wait a moment and try again."),
      unavailable: "The service is temporarily unavailable. Please try again shortly.",
      internal: "A server error occurred. Please try again.",
      unauthorized: "Your token has expired. Open the console with a new one.",
      network: "Could not reach the server. Please check your network connection.",
      timeout: "The server did not answer. Please try again.",
      token: "Could not get a token. Please open the console again.",
      disconnected: "Not connected.",
      closed: "The connection was closed. Please reload the page.",
      unsupported: "This browser is not supported.",
    },
    tag: "en-US",
  },
};

// ---------------------------------------------------------------- pure helpers

/**
 * Split `text` into segments by finding spans. Spans count Unicode code points (as Python
 * does), not UTF-16 units. Returns [{text, findings: [...]}] covering the whole text.
 */
export function highlightSegments(text, findings = []) {
  const chars = Array.from(text || "");
  const n = chars.length;
  const cuts = new Set([0, n]);
  const spans = [];
  for (const f of findings) {
    const start = Math.max(0, Math.min(n, f.start | 0));
    const end = Math.max(start, Math.min(n, f.end | 0));
    if (end > start) {
      spans.push({ start, end, f });
      cuts.add(start);
      cuts.add(end);
    }
  }
  const points = [...cuts].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i + 1 < points.length; i += 1) {
    const a = points[i];
    const b = points[i + 1];
    const covering = spans.filter((s) => s.start <= a && s.end >= b).map((s) => s.f);
    out.push({ text: chars.slice(a, b).join(""), findings: covering });
  }
  return out;
}

/**
 * The findings that lie in the message itself. A finding may also point into the sender's
 * earlier messages (a number split over several messages): the server marks those
 * `current: false` (their spans are offsets into that earlier message's text, never into
 * this one). Without `current`, the message's own findings have the highest `message_index`.
 */
export function ownFindings(findings = []) {
  if (findings.some((f) => typeof f.current === "boolean")) return findings.filter((f) => f.current !== false);
  const idx = findings.map((f) => f.message_index).filter((i) => typeof i === "number");
  if (!idx.length) return findings;
  const top = Math.max(...idx);
  return findings.filter((f) => typeof f.message_index !== "number" || f.message_index === top);
}

/**
 * The sender's earlier messages that the item's findings reach into (`item.earlier_messages`,
 * `{message_index, message_id, text}`), each with its own findings (spans into its text), in
 * message order: [{message_index, message_id, text, findings}].
 */
export function earlierPieces(item) {
  const own = new Set(ownFindings(item?.findings || []));
  const others = (item?.findings || []).filter((f) => !own.has(f));
  return [...(item?.earlier_messages || [])]
    .filter((m) => m && typeof m.text === "string")
    .sort((a, b) => (a.message_index ?? 0) - (b.message_index ?? 0))
    .map((m) => ({
      message_index: m.message_index,
      message_id: m.message_id ?? null,
      text: m.text,
      findings: others.filter((f) => (typeof f.message_index === "number" && f.message_index === m.message_index)
        || (typeof f.message_index !== "number" && f.message_id && f.message_id === m.message_id)),
    }));
}

/** The distinct rules of an item's findings, in first-seen order (the wrong_rules choices). */
export function findingRules(findings = []) {
  return [...new Set(findings.map((f) => f.rule).filter((r) => typeof r === "string" && r))];
}

/** The roles of a token's claims (`roles`: a list, or one role as a string). */
export function claimRoles(claims) {
  const r = claims?.roles;
  if (typeof r === "string") return [r];
  return Array.isArray(r) ? r.filter((x) => typeof x === "string") : [];
}

/** Whether the item's message is held (it can be released or rejected). */
export function isHeld(item) {
  if (!item) return false;
  if (item.action === "hold" || item.status === "held") return true;
  return Boolean(item.withheld_id) && item.action !== "block";
}

/**
 * The decisions the review API accepts for `item` from a viewer with `roles`:
 * [{decision, disabled, reason}] in DECISIONS order; `reason` (a TEXTS key) says why one is
 * not possible: a decided item takes none; an escalated one only from dispute staff or an
 * admin (moderators get 403), and not a second escalation; release and reject need a held
 * message.
 */
export function decisionOptions(item, roles = []) {
  const has = (...r) => r.some((x) => roles.includes(x));
  const escalated = item?.status === "escalated";
  const held = isHeld(item);
  return DECISIONS.map((decision) => {
    let reason = null;
    if (item?.status === "decided") reason = "alreadyDecided";
    else if (escalated && !has("dispute", "admin")) reason = "escalatedOnly";
    else if (escalated && decision === "escalate") reason = "alreadyEscalated";
    else if (HELD_ONLY.has(decision) && !held) reason = "releaseOnlyHeld";
    return { decision, disabled: reason !== null, reason };
  });
}

/** Whether a viewer with `roles` may claim `item` (as review.py's item_staff/_may_act). */
export function mayClaim(item, roles = []) {
  if (!item || item.status === "decided") return false;
  if (item.status === "escalated") return roles.includes("dispute") || roles.includes("admin");
  return roles.includes("moderator") || roles.includes("admin");
}

/** The queue's URL for a status filter ("" or unknown: the default, open and claimed). */
export function queuePath(status) {
  return QUEUE_FILTERS.includes(status) && status ? `/v1/moderation/queue?status=${encodeURIComponent(status)}` : "/v1/moderation/queue";
}

/** The status filter a viewer starts with: dispute staff without moderator rights see escalated items only. */
export function defaultFilter(roles = []) {
  return roles.includes("dispute") && !roles.includes("moderator") && !roles.includes("admin") ? "escalated" : "";
}

/** Risk as a percentage for display: the service scores 0..100 (more for restricted users). */
export function riskPercent(risk) {
  const r = Number(risk) || 0;
  return Math.max(0, Math.min(100, Math.round(r)));
}

/** Queue items by risk (highest first), then oldest first. */
export function sortQueue(items) {
  return [...items].sort((a, b) => (b.risk ?? 0) - (a.risk ?? 0) || String(a.created_at).localeCompare(String(b.created_at)));
}

/** Precision rows, worst first; precision computed when the server did not give it. */
export function precisionRows(rules) {
  return [...rules]
    .map((r) => {
      const total = (r.confirmed || 0) + (r.dismissed || 0);
      const precision = typeof r.precision === "number" ? r.precision : total ? r.confirmed / total : null;
      return { ...r, precision };
    })
    .sort((a, b) => (a.precision ?? 2) - (b.precision ?? 2) || a.rule.localeCompare(b.rule));
}

export function pickText(value, locale) {
  if (value == null) return "";
  if (typeof value === "string") return value;
  return value[locale] || value.ja || value.en || "";
}

// An HTTP status without a tsunagu error body (a proxy's page, say) as the nearest code.
/**
 * The moderator's text for an error of the review API or the SDK (`{code, message,
 * retry_after?, status?}`), by its `code`, in the console's language; never the server's
 * English `message` (see `errorDetail`). Unknown codes get a generic text.
 */
export function errorText(err, locale) {
  return errorTextFrom((TEXTS[locale] || TEXTS.ja).errors, err);
}

export { errorDetail };

/** The time zone of a moderator's token (`tz` claim) when it is valid, else Asia/Tokyo. */
export function consoleTimeZone(token) {
  return validTimeZone(tokenClaims(token || "").tz, "Asia/Tokyo");
}

/**
 * Put a page of the thread log read with `before_seq` in front of `log` (both in seq
 * order): the messages older than `beforeSeq`, each once. `null` when the answer holds a
 * message at or above `beforeSeq`: the server ignored `before_seq` (it sent the latest page).
 */
export function prependLogPage(log, page, beforeSeq) {
  if (page.some((m) => typeof m.seq === "number" && m.seq >= beforeSeq)) return null;
  const known = new Set(log.map((m) => m.id));
  const older = page.filter((m) => !known.has(m.id)).sort((a, b) => a.seq - b.seq);
  return [...older, ...log];
}

/** Whether the log should be paged back to show the item's message (not in it yet, and older). */
export function logMissesItem(log, item) {
  if (!item?.message_id || !log.length) return false;
  if (log.some((m) => m.id === item.message_id)) return false;
  return (log[0].seq ?? 1) > 1;
}

/** Read `#token=…&locale=…` from a URL fragment. */
export function fragmentParams(hash) {
  const p = new URLSearchParams(String(hash || "").replace(/^#/, ""));
  return { token: p.get("token"), locale: p.get("locale") };
}

// ---------------------------------------------------------------- the page

class Console {
  constructor(token, locale) {
    this.token = token;
    this.locale = locale;
    this.me = tokenClaims(token).sub;
    this.roles = claimRoles(tokenClaims(token)); // as far as the console can know them
    this.filter = defaultFilter(this.roles); // the queue's status filter (QUEUE_FILTERS)
    this.tz = consoleTimeZone(token);
    this.items = [];
    this.selected = null;
    this.threadLog = null;
    this.log = { loading: false, limit: LOG_PAGE, canPage: true }; // how the thread log was read
    this._queueSeq = 0; // the latest queue request: an older answer arriving later is ignored
    this._logSeq = 0; // likewise for the thread log
    this.rules = null;
    this.restrictions = null;
    this.apiMissing = false;
    this.client = new TsunaguClient({ token, server: location.origin });
    this.client.on("state", () => this.renderConn());
    this.client.on("review", () => this.refresh(true));
  }

  get t() {
    return TEXTS[this.locale];
  }

  async start() {
    document.getElementById("locale").value = this.locale;
    document.getElementById("locale").addEventListener("change", (e) => {
      this.locale = e.target.value;
      const p = new URLSearchParams(location.hash.replace(/^#/, ""));
      p.set("locale", this.locale);
      history.replaceState(null, "", `#${p}`);
      this.notice("");
      this.renderAll();
    });
    document.getElementById("refresh").addEventListener("click", () => this.refresh());
    const filter = document.getElementById("status-filter");
    filter.value = this.filter;
    filter.addEventListener("change", (e) => {
      this.filter = QUEUE_FILTERS.includes(e.target.value) ? e.target.value : "";
      this.selected = null;
      this.threadLog = null;
      this.refresh();
    });
    for (const tab of document.querySelectorAll("[role=tab]")) {
      tab.addEventListener("click", () => this.showTab(tab.id));
      tab.addEventListener("keydown", (e) => {
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          const tabs = [...document.querySelectorAll("[role=tab]")].map((el) => el.id);
          const step = e.key === "ArrowRight" ? 1 : tabs.length - 1;
          const other = tabs[(tabs.indexOf(tab.id) + step) % tabs.length];
          this.showTab(other);
          document.getElementById(other).focus();
        }
      });
    }
    this.renderAll();
    this.client.connect().catch(() => {});
    await this.refresh();
  }

  showTab(id) {
    for (const tab of document.querySelectorAll("[role=tab]")) {
      const on = tab.id === id;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    }
    if (id === "tab-precision") this.loadPrecision();
    if (id === "tab-restrictions") this.loadRestrictions();
  }

  /** Show `text` in the notice (`detail`: the raw error, in its title, for support). */
  notice(text, bad = false, detail = "") {
    const el = document.getElementById("notice");
    el.hidden = !text;
    el.className = `notice${bad ? " bad" : ""}`;
    el.textContent = text || "";
    if (detail) el.title = detail;
    else el.removeAttribute("title");
  }

  /** An error of the review API or the SDK, in the console's language (the raw one in a title). */
  fail(err) {
    console.warn("tsunagu console:", errorDetail(err), err);
    if (err?.code) document.getElementById("notice").dataset.errorCode = err.code;
    else delete document.getElementById("notice").dataset.errorCode;
    this.notice(errorText(err, this.locale), true, errorDetail(err));
  }

  async refresh(fromPush = false) {
    // The detail pane (the decision form with a note being typed, the log's scroll) is
    // rebuilt only when the selected item itself changed: a `review` push about another
    // item must not wipe what the moderator is doing.
    const seq = ++this._queueSeq;
    try {
      const data = await this.client.http("GET", queuePath(this.filter));
      // Pushes come in bursts and answers may come back out of order: only the latest
      // request's answer is shown.
      if (seq !== this._queueSeq) return;
      const shownBefore = this.selected ? JSON.stringify(this.selected) : null;
      const known = new Set(this.items.map((i) => i.id));
      this.apiMissing = false;
      this.items = sortQueue(data.items || []);
      // A push about an item already listed (a decision, a claim) keeps the notice shown
      // (for example "decision recorded"); only a new item is announced.
      if (!fromPush) this.notice("");
      else if (this.items.some((i) => !known.has(i.id))) this.notice(this.t.newItem);
      if (this.selected) {
        this.selected = this.items.find((i) => i.id === this.selected.id) || null;
      }
      this.renderQueue();
      if (!this.selected || JSON.stringify(this.selected) !== shownBefore) this.renderDetail();
    } catch (err) {
      if (seq !== this._queueSeq) return;
      if (err.status === 404) {
        this.apiMissing = true;
        this.notice(this.t.noApi, true, errorDetail(err));
      } else if (err.status === 403) this.notice(this.t.forbidden, true, errorDetail(err));
      else this.fail(err);
      this.items = [];
      this.renderQueue();
      this.renderDetail();
    }
  }

  async select(item) {
    this.selected = item;
    this.threadLog = null;
    this.log = { loading: false, limit: LOG_PAGE, canPage: true };
    this.renderQueue();
    this.renderDetail();
    await this.loadLog(item);
  }

  /** GET the staff view of a thread's log: the latest `limit` messages, or those before `before`. */
  async logPage(item, { limit = LOG_PAGE, before = null } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before !== null) q.set("before_seq", String(before));
    const data = await this.client.http("GET", `/v1/moderation/threads/${encodeURIComponent(item.thread)}?${q}`);
    return data.messages || data.log || [];
  }

  /**
   * Read the thread log of `item`: the latest page, then earlier pages until the item's
   * message is in it (`pages`: at most that many earlier pages, for "load earlier"). A
   * server that ignores `before_seq` is asked once for its largest page instead.
   */
  async loadLog(item, { more = false } = {}) {
    const seq = ++this._logSeq;
    const current = () => seq === this._logSeq && this.selected && this.selected.id === item.id;
    this.log.loading = true;
    if (more) this.renderDetail();
    try {
      let log = this.threadLog;
      if (log === null && !this.isStaff()) {
        // Dispute staff may not read whole threads (403): the item's own context instead.
        const data = await this.client.http("GET", `/v1/moderation/items/${encodeURIComponent(item.id)}`);
        log = data.context || [];
        this.log.canPage = false;
        this.log.limit = LOG_MAX;
      }
      if (log === null) log = await this.logPage(item, { limit: this.log.limit });
      let earlier = more ? 1 : 0;
      for (let guard = 0; guard < 50 && log.length && (earlier > 0 || logMissesItem(log, item)); guard += 1) {
        if (!current()) return;
        earlier -= 1;
        const first = log[0].seq;
        if (!(first > 1)) break;
        if (this.log.canPage) {
          const merged = prependLogPage(log, await this.logPage(item, { limit: LOG_PAGE, before: first }), first);
          if (merged !== null) {
            if (merged.length === log.length) break;
            log = merged;
            continue;
          }
          this.log.canPage = false; // the server sent its latest page again
        }
        if (this.log.limit >= LOG_MAX) break;
        this.log.limit = LOG_MAX;
        log = await this.logPage(item, { limit: LOG_MAX });
      }
      if (!current()) return;
      this.threadLog = log;
    } catch (err) {
      if (!current()) return;
      if (this.threadLog === null) this.threadLog = [];
      this.fail(err);
    }
    this.log.loading = false;
    this.renderDetail();
  }

  /** Moderators and admins read threads; dispute staff only the items escalated to them. */
  isStaff() {
    return this.roles.includes("moderator") || this.roles.includes("admin") || !this.roles.includes("dispute");
  }

  async claim(item) {
    try {
      const data = await this.client.http("POST", `/v1/moderation/items/${encodeURIComponent(item.id)}/claim`, {});
      Object.assign(item, data.item || { claimed_by: this.me });
      this.renderQueue();
      this.renderDetail();
    } catch (err) {
      this.fail(err);
    }
  }

  async decide(item, decision, note, wrongRules = []) {
    try {
      // Deciding claims the item on the server when nobody has. `wrong_rules` is sent only
      // when the moderator marked a rule as wrong (per-rule precision).
      const body = { decision, note };
      if (wrongRules.length) body.wrong_rules = wrongRules;
      await this.client.http("POST", `/v1/moderation/items/${encodeURIComponent(item.id)}/decide`, body);
      this.selected = null;
      this.rules = null;
      await this.refresh();
      this.notice(`${this.t.decided}: ${this.t.decisions[decision]}`);
    } catch (err) {
      this.fail(err);
    }
  }

  /** GET a list of the review API (`path` answers `{[key]: [...]}`); [] if it fails. */
  async loadList(path, key) {
    try {
      return (await this.client.http("GET", path))[key] || [];
    } catch (err) {
      if (err.status === 404) this.notice(this.t.noApi, true, errorDetail(err));
      else this.fail(err);
      return [];
    }
  }

  async loadPrecision() {
    this.rules = await this.loadList("/v1/moderation/precision", "rules");
    this.renderPrecision();
  }

  async loadRestrictions() {
    this.restrictions = await this.loadList("/v1/moderation/restrictions", "restrictions");
    this.renderRestrictions();
  }

  async lift(user, note) {
    try {
      await this.client.http("DELETE", `/v1/moderation/restrictions/${encodeURIComponent(user)}`, { note });
      this.notice(`${this.t.lifted}: ${user}`);
    } catch (err) {
      this.fail(err);
    }
    await this.loadRestrictions();
  }

  // --- rendering

  renderAll() {
    const t = this.t;
    document.documentElement.lang = this.locale;
    document.title = t.title;
    document.getElementById("title").textContent = t.title;
    document.getElementById("tab-queue").textContent = t.queue;
    document.getElementById("tab-precision").textContent = t.precision;
    document.getElementById("queue-title").textContent = t.queue;
    document.getElementById("precision-title").textContent = t.precision;
    document.getElementById("tab-restrictions").textContent = t.restrictions;
    document.getElementById("restrictions-title").textContent = t.restrictions;
    document.getElementById("refresh").textContent = t.refresh;
    document.getElementById("status-filter-label").textContent = t.statusFilter;
    for (const opt of document.querySelectorAll("#status-filter option")) opt.textContent = t.filters[opt.value] ?? opt.value;
    if (this.apiMissing) this.notice(t.noApi, true);
    this.renderConn();
    this.renderQueue();
    this.renderDetail();
    this.renderPrecision();
    this.renderRestrictions();
  }

  renderConn() {
    const el = document.getElementById("conn");
    const state = this.client.state;
    el.dataset.state = state;
    el.textContent = state === "open" ? this.t.open : state === "reconnecting" ? this.t.reconnecting : this.t.closed;
  }

  statusText(item) {
    const t = this.t;
    const status = t.statuses[item.status] || item.status || "";
    const action = item.action ? t.actions[item.action] || item.action : "";
    return action ? `${status}・${action}` : status;
  }

  chips(categories) {
    return (categories || []).map((c) => h("span", { class: `chip ${c}` }, this.t.categories[c] || c));
  }

  renderQueue() {
    const t = this.t;
    const ul = document.getElementById("queue");
    const fmt = new Intl.DateTimeFormat(t.tag, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: this.tz });
    if (!this.items.length) {
      ul.replaceChildren(h("li", { class: "empty", role: "option", "aria-disabled": "true" }, t.empty));
      return;
    }
    const lis = this.items.map((item, i) => keyed(item.id, this.queueRow(item, i, fmt)));
    // Unchanged rows stay the same nodes (focus and a click in progress survive a push).
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#queue li");
    const focusId = focused ? focused.dataset.id : null;
    reconcile(ul, lis);
    if (focusId && !ul.contains(document.activeElement)) ul.querySelector(`li[data-id="${CSS.escape(focusId)}"]`)?.focus();
  }

  /** One row of the queue. Its listeners look the item up by id when they fire: a row kept
   * by `reconcile` across a refresh acts on the refreshed item. */
  queueRow(item, i, fmt) {
    const t = this.t;
    const current = () => this.items.find((x) => x.id === item.id) || item;
    const selected = this.selected && this.selected.id === item.id;
    const risk = riskPercent(item.risk);
    return h("li", {
      role: "option", "aria-selected": selected ? "true" : "false", "data-id": item.id, "data-thread": item.thread,
      tabindex: selected || (!this.selected && i === 0) ? "0" : "-1",
      onclick: () => this.select(current()),
      onkeydown: (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          this.select(current());
        } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          const next = e.target[e.key === "ArrowDown" ? "nextElementSibling" : "previousElementSibling"];
          if (next) {
            e.target.tabIndex = -1;
            next.tabIndex = 0;
            next.focus();
          }
        }
      },
    },
    h("div", { class: "top" },
      h("span", { class: "risk", "aria-label": `${t.risk} ${risk}%` }, h("span", { class: "bar" }, h("span", { style: `width:${risk}%` })), `${risk}`),
      h("span", {}, h("span", { class: "status" }, this.statusText(item)), " ", item.created_at ? fmt.format(new Date(item.created_at)) : "")),
    h("div", {}, this.chips(item.categories)),
    h("div", { class: "text" }, `${item.sender}: ${item.text || ""}`),
    item.claimed_by ? h("div", { class: "top" }, t.claimedBy(item.claimed_by)) : null);
  }

  highlighted(text, findings) {
    return highlightSegments(text, findings).map((seg) => {
      if (!seg.findings.length) return seg.text;
      const high = seg.findings.some((f) => f.severity === "high" || f.severity >= 3);
      const label = seg.findings.map((f) => `${this.t.categories[f.category] || f.category} (${f.rule})`).join(", ");
      return h("mark", { class: high ? "high" : "", title: label, "aria-label": `${label}: ${seg.text}` }, seg.text);
    });
  }

  renderDetail() {
    const t = this.t;
    const box = document.getElementById("detail");
    const item = this.selected;
    if (!item) {
      box.replaceChildren(h("h2", {}, t.findings), h("p", { class: "empty" }, this.items.length ? t.select : t.empty));
      delete box.dataset.item;
      return;
    }
    const fmt = new Intl.DateTimeFormat(t.tag, { dateStyle: "medium", timeStyle: "short", timeZone: this.tz });
    const findings = item.findings || [];
    const claimedByMe = item.claimed_by === this.me;
    const parts = [
      h("h2", {}, h("span", {}, this.chips(item.categories)),
        claimedByMe ? h("span", { class: "status" }, t.claimed)
          : h("button", { class: "btn", type: "button", id: "claim", disabled: !mayClaim(item, this.roles), onclick: () => this.claim(item) }, item.claimed_by ? `${t.claim} (${t.claimedBy(item.claimed_by)})` : t.claim)),
      h("div", { class: "detail" },
        h("table", {}, h("tbody", {},
          h("tr", {}, h("th", {}, t.sender), h("td", {}, item.sender)),
          h("tr", {}, h("th", {}, t.thread), h("td", {}, item.thread)),
          h("tr", {}, h("th", {}, t.status), h("td", { id: "item-status", "data-status": item.status || "" }, this.statusText(item))),
          item.escalated_by ? h("tr", {}, h("th", {}, t.escalatedBy), h("td", {}, item.escalated_by)) : null,
          item.decision ? h("tr", {}, h("th", {}, t.decision), h("td", {}, t.decisions[item.decision] || item.decision)) : null,
          h("tr", {}, h("th", {}, t.risk), h("td", {}, String(item.risk ?? 0))),
          h("tr", {}, h("th", {}, t.created), h("td", {}, item.created_at ? fmt.format(new Date(item.created_at)) : "")))),
        h("h3", {}, t.message),
        h("div", { class: "quote", id: "item-text" }, this.highlighted(item.text || "", ownFindings(findings))),
        this.earlierView(item),
        h("h3", {}, t.findings),
        h("table", { id: "findings" },
          h("thead", {}, h("tr", {}, h("th", {}, t.category), h("th", {}, t.rule), h("th", {}, t.severity), h("th", {}, t.explanation))),
          h("tbody", {}, findings.map((f) => h("tr", {},
            h("td", {}, this.chips([f.category])),
            h("td", {}, h("code", {}, f.rule), ownFindings(findings).includes(f) ? null : h("div", { class: "status" }, t.earlier)),
            h("td", {}, String(f.severity ?? "")),
            h("td", {}, pickText(f.explanation, this.locale)))))),
        item.findings_total > findings.length
          ? h("p", { class: "status", id: "more-findings" }, t.moreFindings(findings.length, item.findings_total))
          : null,
        h("h3", {}, t.decision),
        this.decisionForm(item),
        h("h3", {}, t.log),
        this.logView(item)),
    ];
    // The same item shown again (it changed, or the language did): keep the decision being
    // chosen and the note being typed.
    const same = box.dataset.item === item.id;
    const note = same ? box.querySelector("#note")?.value : "";
    const choice = same ? box.querySelector("input[data-decision]:checked")?.value : null;
    const wrong = same ? [...box.querySelectorAll("input[data-wrong-rule]:checked")].map((el) => el.value) : [];
    box.replaceChildren(...parts);
    box.dataset.item = item.id;
    if (note) box.querySelector("#note").value = note;
    for (const rule of wrong) {
      const cb = box.querySelector(`input[data-wrong-rule="${CSS.escape(rule)}"]`);
      if (cb) cb.checked = true;
    }
    const radio = choice && box.querySelector(`input[data-decision="${CSS.escape(choice)}"]`);
    if (radio && !radio.disabled) radio.checked = true;
  }

  /** The sender's earlier messages a split finding reaches into, each highlighted with its own spans. */
  earlierView(item) {
    const pieces = earlierPieces(item);
    if (!pieces.length) return null;
    return h("div", { id: "earlier-messages" }, h("h3", {}, this.t.earlierMessages),
      pieces.map((p) => h("div", { class: "quote earlier-piece", "data-index": String(p.message_index ?? ""), "data-id": p.message_id || "",
        "aria-label": this.t.earlierPiece(p.message_index ?? "") },
      h("div", { class: "who" }, this.t.earlierPiece(p.message_index ?? "")),
      h("div", { class: "piece-text" }, this.highlighted(p.text, p.findings)))));
  }

  decisionForm(item) {
    const t = this.t;
    const name = `decision-${item.id}`;
    const note = h("textarea", { id: "note", "aria-label": t.note, placeholder: t.note });
    const options = decisionOptions(item, this.roles);
    const blocked = options.every((o) => o.disabled) ? options[0].reason : null;
    // No decision is chosen in advance: submitting without a choice decides nothing.
    const fieldset = h("fieldset", { class: "decisions", onchange: () => {
      fieldset.removeAttribute("aria-invalid");
      if (document.getElementById("notice").textContent === t.chooseDecision) this.notice("");
    } }, h("legend", { class: "sr" }, t.decision),
    options.map(({ decision: d, disabled: off, reason }) => h("label", {}, h("input", { type: "radio", name, value: d, disabled: off, "data-decision": d }),
      t.decisions[d], off && reason !== blocked ? h("span", { class: "sr" }, t[reason]) : null)));
    const rules = findingRules(item.findings || []);
    const wrong = rules.length ? h("fieldset", { class: "wrong-rules" }, h("legend", {}, t.wrongRules),
      rules.map((rule) => h("label", {}, h("input", { type: "checkbox", value: rule, "data-wrong-rule": rule, disabled: Boolean(blocked) }),
        h("code", {}, rule), ` ${t.wrongRule}`))) : null;
    const form = h("form", { class: "decide", onsubmit: (e) => {
      e.preventDefault();
      if (blocked) return;
      const choice = form.querySelector(`input[name="${name}"]:checked`);
      if (!choice) {
        fieldset.setAttribute("aria-invalid", "true");
        this.notice(t.chooseDecision, true);
        form.querySelector(`input[name="${name}"]:not(:disabled)`)?.focus();
        return;
      }
      const wrongRules = [...form.querySelectorAll("input[data-wrong-rule]:checked")].map((el) => el.value);
      this.decide(item, choice.value, note.value.trim(), wrongRules);
    } },
    blocked ? h("p", { class: "blocked", id: "decide-blocked" }, t[blocked]) : null,
    fieldset,
    wrong,
    note,
    h("div", { class: "row" }, h("button", { class: "btn primary", type: "submit", id: "decide", disabled: Boolean(blocked) }, t.submit)));
    return form;
  }

  logView(item) {
    const t = this.t;
    if (this.threadLog === null) return h("div", { class: "log" }, h("div", { class: "empty" }, "…"));
    if (!this.threadLog.length) return h("div", { class: "log" }, h("div", { class: "empty" }, t.logEmpty));
    const fmt = new Intl.DateTimeFormat(t.tag, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: this.tz });
    const log = h("div", { class: "log", tabindex: "0", "aria-label": t.log });
    const first = this.threadLog[0].seq;
    if (first > 1 && (this.log.canPage || this.log.limit < LOG_MAX)) {
      log.append(h("button", { class: "btn earlier", type: "button", id: "log-earlier", "aria-busy": this.log.loading ? "true" : undefined,
        disabled: this.log.loading, onclick: () => this.loadLog(item, { more: true }) }, this.log.loading ? t.loadingEarlier : `↑ ${t.loadEarlier}`));
    } else if (first === 1) log.append(h("div", { class: "empty log-start" }, t.logStart));
    let focusEl = null;
    for (const m of this.threadLog) {
      const isItem = item.message_id && m.id === item.message_id;
      const f = ownFindings((m.moderation && m.moderation.findings) || (isItem ? item.findings : []) || []);
      const el = h("div", { class: `m${m.kind === "system" ? " system" : ""}${isItem ? " focus" : ""}`, "data-id": m.id },
        h("div", { class: "who" }, `#${m.seq ?? "–"} ${m.sender} · ${m.created_at ? fmt.format(new Date(m.created_at)) : ""}`),
        h("div", {}, this.highlighted(m.body || "", f)));
      if (isItem) focusEl = el;
      log.append(el);
    }
    if (focusEl) queueMicrotask(() => focusEl.scrollIntoView({ block: "nearest" }));
    return log;
  }

  /** Show "…" while `list` loads (null) or `emptyText` when it is empty; true if shown. */
  listPlaceholder(box, list, emptyText) {
    if (list !== null && list.length) return false;
    box.replaceChildren(h("p", { class: "empty" }, list === null ? "…" : emptyText));
    return true;
  }

  renderPrecision() {
    const t = this.t;
    const box = document.getElementById("precision");
    if (this.listPlaceholder(box, this.rules, t.noPrecision)) return;
    const rows = precisionRows(this.rules);
    box.replaceChildren(h("p", { class: "help", id: "precision-help" }, t.precisionHelp), h("table", { id: "precision-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t.rule), h("th", { class: "num" }, t.confirmed), h("th", { class: "num" }, t.dismissed), h("th", { class: "num" }, t.other), h("th", { class: "num" }, t.precisionCol))),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.precision !== null && r.precision < 0.8 ? "low" : "", "data-rule": r.rule },
        h("td", {}, h("code", {}, r.rule)),
        h("td", { class: "num" }, String(r.confirmed ?? 0)),
        h("td", { class: "num" }, String(r.dismissed ?? 0)),
        h("td", { class: "num" }, String(r.other ?? 0)),
        h("td", { class: "num" }, r.precision === null ? "–" : `${(r.precision * 100).toFixed(1)}%`))))));
  }

  renderRestrictions() {
    const t = this.t;
    const box = document.getElementById("restrictions");
    if (this.listPlaceholder(box, this.restrictions, t.noRestrictions)) return;
    const when = (at) => new Date(at).toLocaleString(t.tag, { timeZone: this.tz });
    box.replaceChildren(h("table", { id: "restrictions-table" },
      h("thead", {}, h("tr", {}, h("th", {}, t.user), h("th", {}, t.reason), h("th", {}, t.restrictedBy), h("th", {}, t.since), h("th", {}, t.lift))),
      h("tbody", {}, this.restrictions.map((r) => {
        const note = h("input", { type: "text", "aria-label": `${t.liftNote} (${r.user})`, placeholder: t.liftNote, class: "lift-note" });
        return h("tr", { "data-user": r.user },
          h("td", {}, h("code", {}, r.user)),
          h("td", {}, r.reason),
          h("td", {}, r.by),
          h("td", {}, when(r.at)),
          h("td", {}, note, h("button", { class: "btn", type: "button", "data-lift": r.user,
            onclick: () => this.lift(r.user, note.value.trim()) }, t.lift)));
      }))));
  }
}

function login(locale) {
  const t = TEXTS[locale];
  const ta = h("textarea", { "aria-label": t.needToken, id: "token-input" });
  const form = h("form", { class: "login", onsubmit: (e) => {
    e.preventDefault();
    location.hash = `token=${encodeURIComponent(ta.value.trim())}&locale=${locale}`;
    location.reload();
  } }, h("label", { for: "token-input" }, t.needToken), ta, h("button", { class: "btn primary", type: "submit" }, "OK"));
  document.querySelector("main").replaceChildren(form);
}

if (typeof document !== "undefined") {
  const { token, locale: fromHash } = fragmentParams(location.hash);
  const claimLocale = token ? tokenClaims(token).locale : null;
  const locale = fromHash === "en" || fromHash === "ja" ? fromHash : claimLocale === "en" ? "en" : "ja";
  if (!token) login(locale);
  else {
    const app = new Console(token, locale);
    window.tsunaguConsole = app;
    app.start();
  }
}
