// DOM helpers shared by the chat widget and the moderator console (plain ES module).
// Text goes in through text nodes and attributes only, never as markup.

/** An element: `attrs` (`class`, `text`, `on<event>` listeners, other attributes), then children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
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
 * Make `parent`'s children `next` (elements made by `keyed`), keeping every child whose key
 * and markup are unchanged: the same node stays in the document, so a click that spans a
 * render (something arriving between press and release), the focus, a selection, a scroll
 * position inside a row and what a screen reader already read survive it. Only new or
 * changed rows are inserted, and only gone ones removed. (Listeners are not part of the
 * markup: a kept row keeps the listeners it was made with.)
 */
export function reconcile(parent, next) {
  const old = new Map();
  for (const c of parent.children) if (c._key !== undefined && !old.has(c._key)) old.set(c._key, c);
  const rows = next.map((n) => {
    n._sig = n.outerHTML;
    const o = old.get(n._key);
    if (o && o._sig === n._sig) {
      old.delete(n._key);
      return o;
    }
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
