"""The Review page's labeling component: the focused card, the grid of the next cards and the keys.

A Streamlit custom component (components.v1, plain HTML + JS in frontend/, no build step, no
network) that owns the keys n / a / s / u and the card buttons, so that one press is exactly one
request about the sample that was on screen:

- every press gets a token made in the browser and joins the component's list of pending requests;
  the card moves on in the browser at once (the component holds the next cards' data);
- the component's value is that whole pending list (plus a counter), so a value that Streamlit
  coalesces with a later one, or a rerun that is interrupted, loses nothing: the next value still
  carries every request not yet acknowledged;
- the server applies each request with its token (the store applies a token once) and answers with
  the tokens it has applied (`acked`); the browser then drops them. Unanswered requests are sent
  again after a while, which is harmless for the same reason.

The value the page reads: {"pending": [request, ...], "seq": int, "zoom": {"sid": int, "n": int} | None}
with request = {"t": token, "op": "label" | "skip" | "unskip" | "undo", "sid": sample id, "label": ..., "src": ...,
"round": the round whose ranking showed the card, "who": the annotator named when it was pressed, "at": when
(ms since 1970 on the server's clock, from the browser's clock and the page's "now"),
"target": token of the label request an undo reverts, or None}. "u" sends "unskip" when the tab's last press
was a skip (the card comes back), else "undo".
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import streamlit.components.v1 as components

FRONTEND = Path(__file__).resolve().parent / "frontend"
_component = components.declare_component("review_card", path=str(FRONTEND))
_outbox = components.declare_component("review_outbox", path=str(Path(__file__).resolve().parent / "outbox"))


def scope_of(url: str, project_id: int, who: str) -> str:
    """Where the browser keeps a project's and an annotator's unacknowledged requests."""
    return f"{store_scope(url)}{project_id}|{who}"


def store_scope(url: str) -> str:
    """The part of every scope that names the store."""
    return f"{url}|"


def review_outbox(*, key: str, url: str, acked: list[str]) -> Any:
    """Draw the outbox (no height) that other pages carry: it sends the requests the Review component
    left unacknowledged when the page was left (a click on another page right after a key press ends
    the run that would have applied them). Its value: {"outbox": {scope: [request, ...]}, "seq": int},
    for the scopes of the store at `url` only."""
    return _outbox(key=key, default=None, prefix=store_scope(url), acked=acked)


def apply_outbox(store, outbox: Any, skipped_of, brought_back_of) -> tuple[list[str], list[dict[str, str]]]:
    """Apply an outbox value's requests (`apply_requests`), each scope as its project and annotator;
    `skipped_of(pid)` and `brought_back_of(pid)` give that project's lists. Returns (acknowledged
    tokens, refusals)."""
    from semiad import query

    prefix = store_scope(store.url)
    acked: list[str] = []
    errors: list[dict[str, str]] = []
    for scope, requests in (outbox.items() if isinstance(outbox, dict) else []):
        pid, _, who = str(scope).removeprefix(prefix).partition("|")
        if not str(scope).startswith(prefix) or not pid.isdigit():
            continue
        a, e, _ = apply_requests(store, int(pid), who, requests, skipped_of(int(pid)), strategies=query.STRATEGIES,
                                 brought_back=brought_back_of(int(pid)))
        acked += a
        errors += e
    return acked, errors


def review_card(*, key: str, cards: list[dict[str, Any]], acked: list[str], errors: list[dict[str, str]],
                per_page: int, per_row: int, who: str, scope: str,
                skip_epoch: int, run: int, zoom: dict[str, Any] | None = None, note: str = "") -> Any:
    """Draw the component; returns its value (see the module docstring). `cards` in queue order, each
    {"sid", "key", "rank", "score", "reason", "src", "thumb", "view"?, "input"?, "diff"?, "recon"?,
    "zoomable"}; pictures are data URIs. `scope` names the project and annotator (the browser keeps
    unsent requests per scope across a reload of the component)."""
    return _component(key=key, default=None, cards=cards, acked=acked, errors=errors,
                      per_page=per_page, per_row=per_row, who=who, scope=scope, skip_epoch=skip_epoch,
                      run=run, zoom=zoom, note=note, now=time.time() * 1000)


def pressed_at(req: dict) -> datetime | None:
    """When a request's key was pressed, on the server's clock (the browser stamps it with its own clock
    moved by the difference it last saw between the two: the page's `now`). None when not known."""
    at = req.get("at")
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        return None
    return datetime.fromtimestamp(float(at) / 1000.0, timezone.utc)


def apply_requests(store, project_id: int, who: str, requests: list, skipped: list[int],
                   strategies: Iterable[str] = (), brought_back: list[int] | None = None
                   ) -> tuple[list[str], list[dict[str, str]], str]:
    """Apply the component's pending requests in order, each at most once (the store keeps the
    tokens); skips go to `skipped` (this session's list). Returns (acknowledged tokens, refusals as
    {"t", "message"}, a note for the page). A request that cannot be read is acknowledged as refused.
    Samples an undo reverted are added to the front of `brought_back`, for the page to show first (the
    browser may not hold their cards any more: after a reload, or a new model's ranking).

    Each request is applied as the annotator it names (the name in the sidebar when the key was pressed;
    `who`, the session's name now, for a request that names none): a name changed while presses were on
    their way must not take them over. A label pressed (its "at") before someone else labeled the same
    sample, and held back on its way (a dropped connection), is refused rather than written over the newer
    label (`Store.record_label_changes`)."""
    from state.store import StoreError

    known = {f"review:{s}" for s in strategies}
    acked: list[str] = []
    errors: list[dict[str, str]] = []
    note = ""
    for req in requests if isinstance(requests, list) else []:
        t = req.get("t") if isinstance(req, dict) else None
        if not isinstance(t, str):
            continue
        op = req.get("op")
        by = req["who"] if isinstance(req.get("who"), str) and req["who"].strip() else who
        try:
            if op == "label":
                source = req.get("src") if req.get("src") in known else "review"
                store.record_label(project_id, int(req["sid"]), str(req.get("label")), by, source=source, token=t,
                                   seen_round=req.get("round"), pressed_at=pressed_at(req))
            elif op == "skip":
                sid = int(req["sid"])
                if sid not in skipped:
                    skipped.append(sid)
            elif op == "unskip":  # "u" right after "s": the card comes back
                sid = int(req["sid"])
                if sid in skipped:
                    skipped.remove(sid)
                if brought_back is not None:
                    brought_back[:0] = [sid]
            elif op == "undo":
                target = req.get("target") if isinstance(req.get("target"), str) else None
                reverted = store.undo_last(project_id, by, token=t, target=target)
                if brought_back is not None:  # first in the queue: this tab may no longer hold the card
                    brought_back[:0] = [int(i) for i in reverted]  # (after a reload, or a new model's ranking)
                if target is None:  # your last label, maybe given in another tab or page: named, if one
                    named = (f": {store.sample_key(project_id, reverted[0])}" if len(reverted) == 1
                             else f" ({len(reverted)} samples)")
                    note = f"Undid your last label{named}." if reverted else "Nothing of yours to undo."
            else:
                raise StoreError(f"unknown request {op!r}")
        except (StoreError, KeyError, TypeError, ValueError) as e:
            errors.append({"t": t, "message": str(e) if op == "undo" else f"Not saved: {e}"})
        acked.append(t)
    return acked, errors, note
