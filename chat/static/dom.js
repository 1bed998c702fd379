// DOM helpers shared by the chat widget and the moderator console (plain ES module).
// Text goes in through text nodes and attributes only, never as markup.

/** An element: `attrs` (`class`, `text`, `on<event>` listeners, other attributes), then children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) {
      el.addEventListener(k.slice(2), v);
      // Kept so that `reconcile` can move them onto a row it patches in place.
      (el._on ||= []).push([k.slice(2), v]);
    } else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** `el`, tagged with the key `reconcile` knows it by. */
export function keyed(key, el) {
  el._key = key;
  return el;
}

/**
 * Make `old` look like `next` (an element of the same tag, built by `h`) while keeping `old`
 * and every descendant that can be kept in the document: attributes are set or removed,
 * text nodes get their new text, children of the same tag are patched the same way, other
 * children are replaced, and the listeners `h` attached to `next` replace those of `old`.
 * A screen reader following a live region then hears only what changed (a "Read" state, a
 * count), not the whole row again; focus inside the row survives too.
 */
export function patch(old, next) {
  for (const a of [...old.attributes]) if (!next.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of next.attributes) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  for (const [type, fn] of old._on || []) old.removeEventListener(type, fn);
  for (const [type, fn] of next._on || []) old.addEventListener(type, fn);
  old._on = next._on;
  const was = [...old.childNodes];
  const now = [...next.childNodes];
  now.forEach((n, i) => {
    const o = was[i];
    if (!o) old.append(n);
    else if (o.nodeType === Node.TEXT_NODE && n.nodeType === Node.TEXT_NODE) {
      if (o.data !== n.data) o.data = n.data;
    } else if (o.nodeType === Node.ELEMENT_NODE && n.nodeType === Node.ELEMENT_NODE && o.nodeName === n.nodeName) {
      patch(o, n);
    } else old.replaceChild(n, o);
  });
  for (const o of was.slice(now.length)) o.remove();
}

/**
 * Make `parent`'s children `next` (elements made by `keyed`), keeping every child whose key
 * is unchanged: the same node stays in the document, so a click that spans a render
 * (something arriving between press and release), the focus, a selection, a scroll position
 * inside a row and what a screen reader already read survive it. A kept row whose markup
 * changed is patched in place (`patch`: only the changed attributes and texts), so a live
 * region announces new rows, not a row again because its state changed. Only new rows are
 * inserted, and only gone ones removed. (A row whose markup is unchanged keeps the
 * listeners it was made with; a patched row takes the new ones.)
 */
export function reconcile(parent, next) {
  const old = new Map();
  for (const c of parent.children) if (c._key !== undefined && !old.has(c._key)) old.set(c._key, c);
  const rows = next.map((n) => {
    const sig = n.outerHTML;
    const o = old.get(n._key);
    if (o && o.nodeName === n.nodeName) {
      old.delete(n._key);
      if (o._sig !== sig) {
        patch(o, n);
        o._sig = sig;
      }
      return o;
    }
    n._sig = sig;
    return n;
  });
  const keep = new Set(rows);
  for (const c of [...parent.childNodes]) if (!keep.has(c)) c.remove();
  let cur = parent.firstChild;
  for (const n of rows) {
    if (n === cur) cur = cur.nextSibling;
    else parent.insertBefore(n, cur);
  }
}

/** `tz` when it is an IANA time zone this browser knows (`Intl` accepts it), else `fallback`. */
export function validTimeZone(tz, fallback = "Asia/Tokyo") {
  if (typeof tz !== "string" || !tz) return fallback;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return tz;
  } catch {
    return fallback;
  }
}

// HTTP statuses of answers that carry no error code, as the protocol's codes.
const HTTP_STATUS_CODES = { 400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 413: "too_large", 429: "rate_limited" };

/** The protocol code of an error of the server or the SDK (`http_<status>` mapped to one). */
export function errorCode(err) {
  const code = typeof err?.code === "string" ? err.code : "";
  const http = /^http_(\d{3})$/.exec(code);
  if (!http) return code;
  const status = Number(http[1]);
  return HTTP_STATUS_CODES[status] || (status >= 500 ? "unavailable" : "generic");
}

/**
 * The text for `err` from an `errors` table of one language, by its code (lower snake case,
 * as the protocol's codes; other keys of the table are not codes); `rate_limited` with its
 * `retry_after`; unknown codes get the table's `generic`. Never the English `message`.
 */
export function errorTextFrom(texts, err) {
  const code = errorCode(err);
  if (code === "rate_limited") {
    const s = Number(err.retry_after);
    return texts.rate_limited(Number.isFinite(s) && s > 0 ? Math.ceil(s) : null);
  }
  const text = /^[a-z0-9_]+$/.test(code) && Object.hasOwn(texts, code) ? texts[code] : texts.generic;
  return typeof text === "function" ? text() : text;
}

/** The error as support needs it (`code: message`), or "". */
export function errorDetail(err) {
  if (!err) return "";
  const message = err.message || String(err);
  return err.code ? `${err.code}: ${message}` : message;
}
