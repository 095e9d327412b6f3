// semiad Review component: the focused card, the grid of the next cards, the keys n / a / s / u.
// One press = one request with its own token, about the sample on screen at that moment. The card
// moves on here at once; the server applies each token once and acknowledges it (see __init__.py).
"use strict";

const S = {
  args: null,
  cards: new Map(),      // sid -> card data, as last received
  order: [],             // the server's queue, in order
  front: [],             // sids brought back by this tab's undo: shown first
  done: new Map(),       // sid -> "label" | "skip": handled in this tab, not shown again
  pending: [],           // requests not yet acknowledged by the server
  history: [],           // this tab's label and skip requests, newest last: what "u" reverts
  undid: new Map(),      // undo token -> the sid it brought back
  seq: 0,
  scope: null,
  skipEpoch: null,
  view: "original",      // focused card's picture: original | input | recon
  zoomN: 0,
  zoomShown: 0,
  errors: [],
  lastSend: 0,
  resendAfter: 1500,
  focusedSid: null,
};
window.reviewState = S;  // for tests and the bench: what this tab holds
window.reviewIgnored = 0;  // keys that found no card on screen
window.reviewTrace = [];  // {key, sid, next, t, tKey, tDom, tPaint, tAck}: key to next card on screen, to saved (bench)

// ----- talking to Streamlit (components v1 protocol) --------------------------------------------
function post(type, data) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
}
function setHeight() {
  const h = Math.ceil(document.getElementById("root").getBoundingClientRect().height) + 4;
  if (h !== S.lastHeight) { S.lastHeight = h; post("streamlit:setFrameHeight", { height: h }); }
}
function send() {
  if (!S.waitingSince) S.waitingSince = Date.now();
  S.seq += 1;
  S.lastSend = Date.now();
  post("streamlit:setComponentValue", {
    value: { pending: S.pending, seq: S.seq, zoom: S.zoomN ? { sid: S.zoomSid, n: S.zoomN } : null },
    dataType: "json",
  });
  save();
}

function randomHex(bytes) {
  const b = new Uint8Array(bytes); crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
// This tab's name, first in each of its tokens ("<tab>_<random>"): the store tells this tab's own earlier
// presses from labels given elsewhere after a press (a press held back on its way must not overwrite those)
const TAB = (() => {
  try {
    let t = sessionStorage.getItem("semiad-tab");
    if (!t) { t = randomHex(6); sessionStorage.setItem("semiad-tab", t); }
    return t;
  } catch (e) { return randomHex(6); }
})();
function token() { return TAB + "_" + randomHex(16); }

// Unacknowledged requests and this tab's history survive a remount of the component (a page switch,
// a full rerun that rebuilt it): kept per project and annotator in the tab's sessionStorage.
function storageKey() { return "semiad-review:" + S.scope; }
function save() {
  if (!S.scope) return;
  try {
    sessionStorage.setItem(storageKey(), JSON.stringify({
      pending: S.pending, history: S.history.slice(-500), done: Array.from(S.done.entries()).slice(-2000),
      front: S.front, seq: S.seq, skipEpoch: S.skipEpoch, run: S.run,
    }));
  } catch (e) { /* storage full or blocked: the in-memory state still works */ }
}
function restore(scope) {
  S.scope = scope;
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(storageKey()) || "null"); } catch (e) { saved = null; }
  S.pending = saved ? saved.pending || [] : [];
  S.history = saved ? saved.history || [] : [];
  S.done = new Map(saved ? saved.done || [] : []);
  S.front = saved ? saved.front || [] : [];
  S.seq = saved ? saved.seq || 0 : 0;
  S.skipEpoch = saved ? saved.skipEpoch : null;
  S.run = saved ? saved.run : null;
}

// ----- the queue as this tab sees it ------------------------------------------------------------
function queue() {
  const out = [], seen = new Set();
  for (const sid of S.front.concat(S.order)) {
    if (seen.has(sid) || S.done.has(sid) || !S.cards.has(sid)) continue;
    seen.add(sid); out.push(sid);
  }
  return out;
}

function press(op, sid, label) {
  const a = S.args;
  if (!a) return;
  S.errors = [];
  if (!a.who && op !== "skip") { flash("Enter your name in the sidebar to label: it is stored with every label."); return; }
  const before = S.focusedSid;
  const tKey = S._keyTime !== undefined ? S._keyTime : performance.now();
  S._keyTime = undefined;
  if (op === "undo") {
    const last = S.history.pop();
    // the last press was a skip: the card comes back (the server forgets the skip); else the last label
    const req = last && last.op === "skip" ? { t: token(), op: "unskip", sid: last.sid }
      : { t: token(), op: "undo", target: last ? last.t : null, who: a.who };
    if (last) {
      if (req.op === "undo") S.undid.set(req.t, last.sid);  // a refused undo hides the card again
      S.done.delete(last.sid);
      S.front = [last.sid].concat(S.front.filter((x) => x !== last.sid));
    }
    S.pending.push(req);
    S.note = last ? "" : "Undoing your last label (made before this page was opened)…";
  } else {
    if (sid === null || sid === undefined || !S.cards.has(sid) || S.done.has(sid)) {
      window.reviewIgnored += 1;  // no card on screen (the next ones are still loading): nothing to label
      S.note = "That key labeled nothing: " + (a.cards.length ? "the next cards are still loading." :
        "no card is left in this queue.");
      render();
      return;
    }
    const card = S.cards.get(sid);
    // when, on the server's clock: the browser's own, moved by the difference seen at the last render
    const req = { t: token(), op: op, sid: sid, src: card.src, round: card.round, who: a.who,
                  at: Math.round(Date.now() + (Number.isFinite(S.clockShift) ? S.clockShift : 0)) };
    if (op === "label") req.label = label;
    S.history.push({ t: req.t, sid: sid, op: op });
    S.done.set(sid, op === "label" ? "label" : "skip");
    S.front = S.front.filter((x) => x !== sid);
    S.pending.push(req);
    S.note = "";
  }
  S.view = "original";
  render();
  const next = S.focusedSid;
  const tDom = performance.now();
  const entry = { key: op === "label" ? label : op, sid: before, next: next, tKey: tKey, tDom: tDom, tPaint: null,
                  t: S.pending[S.pending.length - 1].t, tAck: null };
  window.reviewTrace.push(entry);
  if (window.reviewTrace.length > 500) window.reviewTrace.shift();
  requestAnimationFrame(() => setTimeout(() => { entry.tPaint = performance.now(); }, 0));
  send();
}

// ----- keys -------------------------------------------------------------------------------------
const KEYS = { n: ["label", "normal"], a: ["label", "anomalous"], s: ["skip", null], u: ["undo", null] };
function typing(el) {
  if (!el) return false;
  const tag = (el.tagName || "").toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable ||
    (el.closest && el.closest("[contenteditable='true'], [role='textbox'], [role='combobox'], [role='listbox']"));
}
function onKey(e) {
  if (!document.getElementById("root") || (window.frameElement && !window.frameElement.isConnected)) {
    try { window.parent.document.removeEventListener("keydown", onKey, true); } catch (err) { /* gone */ }
    return;
  }
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  const k = (e.key || "").toLowerCase();
  if (!(k in KEYS)) return;
  // a closed "Show next" box keeps the keyboard after a pick: its letters are the cards' (typing a search
  // there opened the list and labeled nothing); an open list, and every other text field, keep theirs
  const chooser = e.target && e.target.closest && e.target.closest("[data-testid='stSelectbox']");
  if (chooser && e.target.getAttribute("aria-expanded") !== "true") {
    e.stopPropagation();
    e.target.blur();
  } else if (typing(e.target) || typing(e.target && e.target.ownerDocument && e.target.ownerDocument.activeElement)) {
    return;
  }
  if (zoomOpen()) return;
  e.preventDefault();
  // the key's time on this frame's clock (the event may come from the parent document)
  const shift = (e.view && e.view.performance ? e.view.performance.timeOrigin : performance.timeOrigin) - performance.timeOrigin;
  S._keyTime = e.timeStamp + shift;
  const [op, label] = KEYS[k];
  press(op, op === "undo" ? null : S.focusedSid, label);
}
document.addEventListener("keydown", onKey);
// on the page: in the capture phase, before the page's own widgets see the key (see the chooser in onKey)
try { window.parent.document.addEventListener("keydown", onKey, true); } catch (e) { /* not same-origin: keys in the card only */ }

// ----- zoom: the original at full resolution, over the whole page ----------------------------------
function zoomOpen() {
  try { return !!window.parent.document.getElementById("semiad-zoom"); } catch (e) { return false; }
}
function closeZoom() {
  try { const z = window.parent.document.getElementById("semiad-zoom"); if (z) z.remove(); } catch (e) { /* gone */ }
}
function askZoom(sid) {
  S.zoomN += 1; S.zoomSid = sid;
  showZoom(null, "Loading the original at full resolution…");
  send();
}
function showZoom(src, text) {
  let doc;
  try { doc = window.parent.document; } catch (e) { doc = document; }
  closeZoom();
  const box = doc.createElement("div");
  box.id = "semiad-zoom";
  box.setAttribute("data-testid", "semiadZoom");
  box.style.cssText = "position:fixed;inset:0;z-index:1000000;background:rgba(0,0,0,0.85);overflow:auto;" +
    "cursor:zoom-out;display:flex;flex-direction:column;align-items:flex-start;padding:16px;";
  const cap = doc.createElement("div");
  cap.style.cssText = "color:#fff;font:14px sans-serif;margin-bottom:8px;position:sticky;left:0;top:0;";
  cap.textContent = text;
  box.appendChild(cap);
  if (src) {
    const img = doc.createElement("img");
    img.src = src;
    img.alt = "original at full resolution";
    img.style.cssText = "max-width:none;max-height:none;display:block;margin:auto;";
    // a small original (a 28×28 digit) is blown up by a whole factor to fill the window, its pixels kept
    // sharp; a large one stays at its own size (scroll to see it all)
    img.onload = () => {
      const view = doc.defaultView || window;
      const factor = Math.floor(Math.min((view.innerWidth - 32) / img.naturalWidth,
                                         (view.innerHeight - 64) / img.naturalHeight));
      if (factor > 1) {
        img.style.width = img.naturalWidth * factor + "px";
        img.style.imageRendering = "pixelated";
        cap.textContent = text + " (shown " + factor + "× its size)";
      }
    };
    box.appendChild(img);
  }
  // Escape from either document: a click on the card's picture leaves the keyboard focus in this frame
  const close = (e) => {
    if (e.type === "click" || e.key === "Escape") {
      closeZoom(); doc.removeEventListener("keydown", close); document.removeEventListener("keydown", close);
    }
  };
  box.addEventListener("click", close);
  doc.addEventListener("keydown", close);
  if (doc !== document) document.addEventListener("keydown", close);
  doc.body.appendChild(box);
}

// ----- drawing ----------------------------------------------------------------------------------
function el(tag, attrs, kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v);
  }
  for (const c of kids || []) if (c) e.appendChild(c);
  return e;
}
function pic(src, caption, pixel, extra) {
  const img = el("img", { src: src, alt: caption || "sample", class: pixel ? "pixel" : null, draggable: "false" });
  const box = el("div", { class: "pic" + (extra ? " " + extra : "") }, [img]);
  if (caption) box.appendChild(el("div", { class: "cap", text: caption }));
  return [box, img];
}
function features(rows) {  // a table row: [name, value, z] of the columns furthest from the typical row
  const t = el("table", { class: "features", title: "The columns furthest from the typical row: value, then how many " +
    "interquartile ranges it lies above (+) or below (−) the median of all rows" });
  for (const [name, v, z] of rows) {
    const far = Math.abs(z) >= 3 ? "z far" : "z";
    t.appendChild(el("tr", {}, [el("td", { text: name }), el("td", { text: Number(v).toPrecision(4) }),
      el("td", { class: far, text: (z >= 0 ? "+" : "−") + Math.abs(z).toFixed(1) })]));
  }
  return el("div", { class: "pic" }, [t]);
}
function meta(card) {
  return el("div", { class: "meta" }, [
    // the place in the whole ranking (labeled samples included); the reason below gives it among the unlabeled
    el("span", { class: "whole" }, [el("b", { text: "#" + Number(card.rank).toLocaleString("en") }),
                                    document.createTextNode(" of " + Number(card.of).toLocaleString("en"))]),
    document.createTextNode(" in the ranking · "),
    el("span", { class: "whole", title: "Score: " + card.score_help + ". Higher = more anomalous.",
                 "data-testid": "score", text: "score " + card.score }), el("br"),
    el("code", { text: card.key }), el("br"),
    el("span", { class: "reason", text: card.reason }),
  ]);
}
// A click at the same place this soon after the previous one is a double-click's second: the card under the
// pointer has just moved into the place of the one answered (the grid closes up, the focused card is
// replaced), so it was never looked at. Such a click answers nothing; a quick click elsewhere does.
const DOUBLE_CLICK_MS = 300, DOUBLE_CLICK_PX = 8;  // people double-click 100–250 ms apart
let lastClick = { t: -Infinity, x: NaN, y: NaN };
function button(text, key, cls, onclick, testid) {
  const guarded = (e) => {
    const now = performance.now();
    const second = e.detail > 1 || (now - lastClick.t < DOUBLE_CLICK_MS &&
      Math.hypot(e.clientX - lastClick.x, e.clientY - lastClick.y) <= DOUBLE_CLICK_PX);
    lastClick = { t: now, x: e.clientX, y: e.clientY };
    if (!second) { onclick(); return; }
    S.note = "A second click right after the first was ignored (a double-click): the card under it had just " +
      "moved in. Click again to answer it.";
    render();
  };
  const b = el("button", { class: cls || null, "data-testid": testid, title: key ? "shortcut: " + key : null, onclick: guarded },
               [document.createTextNode(text)]);
  if (key) b.appendChild(el("kbd", { text: key }));
  return b;
}

const gridCache = new Map();  // sid -> grid card element (built once; pictures decode once)
function gridCard(sid) {
  if (gridCache.has(sid)) return gridCache.get(sid);
  const c = S.cards.get(sid);
  const pics = el("div", { class: "pics" }, [c.thumb ? pic(c.thumb, c.diff ? "sample" : null, c.pixel)[0] : features(c.features || [])]);
  if (c.diff) pics.appendChild(pic(c.diff, "|x − x̂|", true)[0]);
  const node = el("div", { class: "card", "data-testid": "gridCard", "data-sid": sid, "data-rank": c.rank,
                           "data-score": c.score, "data-key": c.key }, [
    pics, meta(c),
    el("div", { class: "buttons" }, [
      button("Normal", null, null, () => press("label", sid, "normal"), "gridNormal"),
      button("Anomal.", null, null, () => press("label", sid, "anomalous"), "gridAnomalous"),
    ]),
    button("Skip", null, "tertiary", () => press("skip", sid, null), "gridSkip"),
  ]);
  gridCache.set(sid, node);
  return node;
}

function focusedCard(sid) {
  const c = S.cards.get(sid);
  const views = [["original", c.input ? "Original" : "Sample"]];
  if (c.input) views.push(["input", "Model input"]);
  if (c.recon) views.push(["recon", "Reconstruction x̂"]);
  if (!views.some((v) => v[0] === S.view)) S.view = "original";
  const src = S.view === "input" ? c.input : S.view === "recon" ? c.recon : (c.view || c.thumb);
  const pixel = S.view !== "original" || c.pixel;
  const caption = S.view === "input" ? "model input" : S.view === "recon" ? "x̂ (reconstruction)" :
    (c.input ? "original" + (c.zoomable ? " (click to zoom)" : "") : (c.diff ? "sample" : null));
  if (!c.thumb) {
    return focusedLayout(sid, c, el("div", { class: "pics" }, [features(c.features || [])]), views);
  }
  const [main, img] = pic(src, caption, pixel, c.diff ? "small" : null);
  if (c.zoomable && S.view === "original") {
    img.classList.add("zoomable");
    img.setAttribute("data-testid", "zoomOriginal");
    img.addEventListener("click", () => askZoom(sid));
  }
  const pics = el("div", { class: "pics" }, [main]);
  if (c.diff) pics.appendChild(pic(c.diff, "|x − x̂|", true, "small")[0]);
  return focusedLayout(sid, c, pics, views);
}

function focusedLayout(sid, c, pics, views) {
  const info = el("div", { class: "info" }, [
    el("div", { class: "title", text: "Focused sample" }), meta(c),
    el("div", { class: "buttons" }, [
      button("Normal", "n", null, () => press("label", sid, "normal"), "focusNormal"),
      button("Anomalous", "a", "primary", () => press("label", sid, "anomalous"), "focusAnomalous"),
      button("Skip", "s", null, () => press("skip", sid, null), "focusSkip"),
      button("Undo", "u", null, () => press("undo", null, null), "undo"),
    ]),
  ]);
  if (views.length > 1) {
    const row = el("div", { class: "views" });
    for (const [v, name] of views) {
      row.appendChild(button(name, null, v === S.view ? "on" : null, () => { S.view = v; render(); }, "view-" + v));
    }
    info.appendChild(row);
  }
  info.appendChild(el("div", { class: "hint",
    text: "Keys: n normal · a anomalous · s skip · u undo your last label or skip in this tab." }));
  info.appendChild(statusLine());
  return el("div", { class: "card focused", "data-testid": "focusedCard", "data-sid": sid, "data-rank": c.rank,
                     "data-score": c.score, "data-key": c.key }, [pics, info]);
}

// how long requests have waited with no answer from the server (since the first was sent, or the last render)
const QUIET_MS = 8000;
function quietFor() { return S.pending.length ? Date.now() - Math.max(S.lastRender || 0, S.waitingSince || 0) : 0; }
function statusLine() {
  let text = "", cls = "status";
  if (S.errors.length) { text = S.errors[S.errors.length - 1]; cls += " err"; }
  else if (S.note) text = S.note;
  else if (S.pending.length && quietFor() > QUIET_MS) {
    text = "Saving " + S.pending.length + " request(s)… no answer from the server for " + Math.round(quietFor() / 1000) +
      " s: the connection may be down. They are kept in this tab and sent when it is back.";
  } else if (S.pending.length) text = "Saving " + S.pending.length + " request(s)…";
  else text = "Every label is saved.";
  return el("div", { class: cls, "data-testid": "reviewStatus", "data-pending": S.pending.length, text: text });
}

function flash(text) { S.errors.push(text); render(); }

function render() {
  const a = S.args;
  const root = document.getElementById("root");
  const q = queue();
  const perPage = a ? a.per_page : 12;
  const focus = q.length ? q[0] : null;
  S.focusedSid = focus;
  const parts = [];
  if (a && !a.who) parts.push(el("div", { class: "warn", text: "Enter your name in the sidebar to label: it is stored with every label." }));
  if (focus === null) {
    parts.push(el("div", { class: "empty", "data-testid": "reviewEmpty",
      text: a && a.cards.length === 0 ? "Nothing left to show in this queue." : "Loading the next cards…" }));
    parts.push(statusLine());
    const u = button("Undo", "u", null, () => press("undo", null, null), "undo");
    parts.push(el("div", { class: "buttons" }, [u]));
  } else {
    parts.push(focusedCard(focus));
    const grid = el("div", { class: "grid", "data-testid": "grid" });
    grid.style.gridTemplateColumns = "repeat(" + (a ? a.per_row : 4) + ", minmax(0, 1fr))";
    for (const sid of q.slice(1, perPage)) grid.appendChild(gridCard(sid));
    parts.push(grid);
  }
  root.replaceChildren(...parts);
  root.setAttribute("data-focused", focus === null ? "" : String(focus));
  root.setAttribute("data-pending", String(S.pending.length));
  setHeight();
  preload(q.slice(1, 4));
}

const preloaded = new Set();
function preload(sids) {  // decode the next focused pictures before they are needed
  for (const sid of sids) {
    const c = S.cards.get(sid);
    const src = c && (c.view || c.thumb);
    if (!src || preloaded.has(src)) continue;
    preloaded.add(src);
    const img = new Image(); img.src = src;
    if (img.decode) img.decode().catch(() => {});
  }
  if (preloaded.size > 400) preloaded.clear();
}

// ----- a new render from the server --------------------------------------------------------------
function onRender(args, theme) {
  if (theme) {
    const r = document.documentElement.style;
    if (theme.primaryColor) r.setProperty("--primary", theme.primaryColor);
    if (theme.backgroundColor) r.setProperty("--bg", theme.backgroundColor);
    if (theme.secondaryBackgroundColor) r.setProperty("--bg2", theme.secondaryBackgroundColor);
    if (theme.textColor) { r.setProperty("--text", theme.textColor); }
    if (theme.font) r.setProperty("--font", theme.font);
  }
  if (S.scope !== args.scope) {
    restore(args.scope);
    gridCache.clear();
  }
  if (S.skipEpoch !== args.skip_epoch) {  // the page cleared the skips: skipped cards may come back
    if (S.skipEpoch !== null) for (const [sid, what] of Array.from(S.done.entries())) if (what === "skip") S.done.delete(sid);
    S.skipEpoch = args.skip_epoch;
  }
  if (S.run !== args.run) {  // another model's ranking: cards brought back by undo take their place in it,
    // but the card on screen stays until it is answered (a key pressed as the ranking arrives is meant for it)
    if (S.run !== undefined && S.run !== null) {
      const held = S.focusedSid;
      S.front = held !== null && held !== undefined && S.cards.has(held) && !S.done.has(held) ? [held] : [];
    }
    S.run = args.run;
  }
  S.args = args;
  S.lastRender = Date.now();
  // the server's clock less ours: each render's way here makes it look smaller, so the largest seen is nearest
  if (typeof args.now === "number") S.clockShift = Math.max(S.clockShift ?? -Infinity, args.now - Date.now());
  const acked = new Set(args.acked || []);
  const before = S.pending.length;
  S.pending = S.pending.filter((r) => !acked.has(r.t));
  if (!S.pending.length) S.waitingSince = null;
  const now = performance.now();
  for (const e of window.reviewTrace) if (e.tAck === null && acked.has(e.t)) e.tAck = now;
  if (S.pending.length < before) S.resendAfter = 1500;
  for (const err of args.errors || []) {
    if (S.seenErrors && S.seenErrors.has(err.t)) continue;
    (S.seenErrors = S.seenErrors || new Set()).add(err.t);
    S.errors.push(err.message);
    // a refused undo (the sample was labeled again since) takes back the card it brought back
    if (S.undid.has(err.t)) {
      const sid = S.undid.get(err.t);
      S.done.set(sid, "label");
      S.front = S.front.filter((x) => x !== sid);
    }
    // a refused label puts its card back in front
    const h = S.history.findIndex((x) => x.t === err.t);
    if (h >= 0) {
      const sid = S.history[h].sid;
      S.history.splice(h, 1);
      S.done.delete(sid);
      S.front = [sid].concat(S.front.filter((x) => x !== sid));
    }
  }
  if (args.note) S.note = args.note;
  for (const c of args.cards) {
    const old = S.cards.get(c.sid);
    if (!old || old.thumb !== c.thumb || old.diff !== c.diff || old.rank !== c.rank || old.reason !== c.reason ||
        old.score !== c.score) gridCache.delete(c.sid);
    S.cards.set(c.sid, old && old.view && !c.view && old.thumb === c.thumb ? Object.assign({}, c, { view: old.view }) : c);
  }
  S.order = args.cards.map((c) => c.sid);
  if (S.cards.size > 3000) {  // forget cards far behind
    const keep = new Set(S.order.concat(S.front));
    for (const sid of Array.from(S.cards.keys())) if (!keep.has(sid)) { S.cards.delete(sid); gridCache.delete(sid); }
  }
  const z = args.zoom;
  if (z && z.n === S.zoomN && z.n !== S.zoomShown && zoomOpen()) {
    S.zoomShown = z.n;
    showZoom(z.src, z.text || "Original at full resolution — click or Escape to close");
  }
  render();
  save();
  if (S.pending.length && !S._sentOnLoad) { S._sentOnLoad = true; send(); }  // requests left from before a reload
}

window.addEventListener("message", (e) => {
  const d = e.data;
  if (!d || d.type !== "streamlit:render") return;
  onRender(d.args, d.theme);
});

// Requests the server has not acknowledged are sent again (harmless: each token is applied once),
// backing off so a slow server is not interrupted over and over.
setInterval(() => {
  if (S.pending.length && Date.now() - S.lastSend > S.resendAfter) {
    S.resendAfter = Math.min(S.resendAfter * 2, 12000);
    send();
  }
  const status = document.querySelector("[data-testid='reviewStatus']");
  if (status && quietFor() > QUIET_MS) status.replaceWith(statusLine());  // it counts the seconds without an answer
}, 500);

// Closing or reloading the tab with requests not yet acknowledged asks first (a reload keeps them in
// sessionStorage; closing the tab would lose them). Not once this frame has left the page.
// Requests kept for another name of this tab count too (a name changed while they were on their way).
function waitingElsewhere() {
  try {
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i);
      if (!key || !key.startsWith("semiad-review:") || key === storageKey()) continue;
      const saved = JSON.parse(sessionStorage.getItem(key) || "null");
      if (saved && Array.isArray(saved.pending) && saved.pending.length) return true;
    }
  } catch (e) { /* unreadable: nothing known to be waiting */ }
  return false;
}
try {
  window.parent.addEventListener("beforeunload", (e) => {
    if (window.frameElement && window.frameElement.isConnected && (S.pending.length || waitingElsewhere())) {
      e.preventDefault(); e.returnValue = "";
    }
  });
} catch (e) { /* not same-origin */ }

new ResizeObserver(setHeight).observe(document.getElementById("root"));
post("streamlit:componentReady", { apiVersion: 1 });
