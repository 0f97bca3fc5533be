"""The status board: the platform at a glance, as terminal rows or one self-contained HTML page.

Everything here is a pure function of the journal's ``service_status`` rows (``group``, ``service``,
``last_apply`` / ``last_smoke`` dicts with ``result``, ``at``, ``run_id``, ``template``; smoke adds
``diagnosis`` and ``cert_days_left``) and a clock, so it is tested with hand-made rows.

A service's state: ``fail`` (its last smoke failed, or its last apply failed after that smoke, or its
certificate has expired), ``warn`` (certificate close to expiry, or applied since its last smoke),
``never`` (no apply and no smoke yet), else ``ok``.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

WARN_DAYS = 14
FAILED = ("failed", "stopped", "error", "fail", "interrupted")
LABEL = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "never": "NEVER RUN"}


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    try:
        d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _event(ev: dict | None, now: datetime) -> dict | None:
    if not ev:
        return None
    at = _when(ev.get("at"))
    return {
        "result": str(ev.get("result") or "unknown"),
        "at": at.isoformat(timespec="seconds") if at else None,
        "age": (now - at).total_seconds() if at else None,
        "template": ev.get("template"),
        "run_id": ev.get("run_id"),
    }


def board_rows(rows: list[dict], *, now: datetime | None = None, warn_days: int = WARN_DAYS) -> list[dict]:
    """Journal rows → board rows with ``state`` (ok/warn/fail/never), ``note``, ages and certificate days."""
    now = now or datetime.now(UTC)
    out = []
    for r in rows:
        smoke_raw = r.get("last_smoke") or None
        apply, smoke = _event(r.get("last_apply"), now), _event(smoke_raw, now)
        cert = smoke_raw.get("cert_days_left") if smoke_raw else None
        diagnosis = smoke_raw.get("diagnosis") if smoke_raw else None
        apply_at, smoke_at = _when(apply and apply["at"]), _when(smoke and smoke["at"])
        if apply is None and smoke is None:
            state, note = "never", "no apply or smoke recorded yet"
        elif smoke and smoke["result"].lower() in FAILED:
            state, note = "fail", diagnosis or f"smoke {smoke['result']}"
        elif apply and apply["result"].lower() in FAILED and (smoke_at is None or apply_at is None or apply_at >= smoke_at):
            state, note = "fail", f"apply {apply['result']} ({apply['template']})" if apply["template"] else f"apply {apply['result']}"
        elif cert is not None and cert < 0:
            state, note = "fail", f"certificate expired {_days(-cert)} ago"
        elif cert is not None and cert < warn_days:
            state, note = "warn", f"certificate expires in {_days(cert)}"
        elif smoke is None:
            state, note = "warn", "applied, never smoked"
        elif apply_at and smoke_at and apply_at > smoke_at:
            state, note = "warn", "applied since the last smoke"
        else:
            state, note = "ok", ""
        ages = [e["age"] for e in (apply, smoke) if e and e["age"] is not None]
        out.append({
            "group": r.get("group"), "service": r.get("service"), "state": state, "note": note,
            "last_apply": apply, "last_smoke": smoke, "cert_days_left": cert,
            "age": min(ages) if ages else None,
        })
    return out


def summary(board: list[dict]) -> dict[str, int]:
    counts = {k: 0 for k in LABEL}
    for b in board:
        counts[b["state"]] += 1
    return counts


def _event_text(ev: dict | None) -> str:
    if not ev:
        return "-"
    return f"{ev['result']} {age_text(ev['age'])} ago" if ev["age"] is not None else ev["result"]


def text_rows(board: list[dict]) -> list[list[str]]:
    """Rows for a terminal table: group, service, state, last apply, last smoke, cert days, note."""
    return [[b["group"], b["service"], LABEL[b["state"]], _event_text(b["last_apply"]), _event_text(b["last_smoke"]),
             "-" if b["cert_days_left"] is None else str(b["cert_days_left"]), b["note"]] for b in board]


TEXT_COLUMNS = ["group", "service", "state", "last apply", "last smoke", "cert days", "note"]



CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1d2430; background: #f6f7f9; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.meta { color: #5b6472; margin-bottom: 1rem; }
.counts span { display: inline-block; padding: .2rem .7rem; margin-right: .4rem; border-radius: 1rem; font-weight: 600; }
.attention { border: 2px solid #c62828; background: #fdecea; border-radius: .5rem; padding: .6rem 1rem; margin: 1rem 0; }
.attention h2 { font-size: 1.05rem; margin: 0 0 .3rem; color: #b71c1c; }
.attention li { margin: .15rem 0; }
table { border-collapse: collapse; width: 100%; background: #fff; border-radius: .5rem; overflow: hidden;
        box-shadow: 0 1px 3px rgba(0,0,0,.08); }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #eef1f5; font-size: .85rem; text-transform: uppercase; letter-spacing: .03em; color: #4a5260; }
tr.group th { background: #dfe5ee; color: #1d2430; text-transform: none; font-size: .95rem; }
.badge { display: inline-block; min-width: 4.5rem; text-align: center; padding: .15rem .5rem; border-radius: .3rem;
         font-weight: 700; font-size: .85rem; }
.s-ok .badge, .counts .ok { background: #e3f4e6; color: #1b5e20; }
.s-warn .badge, .counts .warn { background: #fff4d6; color: #7a5200; }
.s-fail .badge, .counts .fail { background: #c62828; color: #fff; }
.s-never .badge, .counts .never { background: #eceff1; color: #455a64; }
tr.s-fail td { background: #fdecea; }
tr.s-fail td.note { color: #b71c1c; font-weight: 600; }
tr.s-warn td { background: #fffaf0; }
.muted { color: #7b8494; }
.ev-fail { color: #b71c1c; font-weight: 600; }
td.num { white-space: nowrap; }
footer { margin-top: 1rem; color: #7b8494; font-size: .85rem; }
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _event_cell(ev: dict | None) -> str:
    if not ev:
        return '<span class="muted">never</span>'
    res = ev["result"]
    cls = "fail" if res.lower() in FAILED else "ok"
    age = f" <span class=\"muted\">{_e(age_text(ev['age']))} ago</span>" if ev["age"] is not None else ""
    tmpl = f"<br><span class=\"muted\">{_e(ev['template'])}</span>" if ev.get("template") else ""
    return f'<span class="ev-{cls}">{_e(res)}</span>{age}{tmpl}'


def render_html(board: list[dict], *, title: str = "ralf status", generated_at: datetime | None = None) -> str:
    """One self-contained page (inline CSS, no scripts, no external assets)."""
    generated_at = generated_at or datetime.now(UTC)
    counts = summary(board)
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<div class="meta">generated {_e(generated_at.isoformat(timespec="seconds"))} · {len(board)} services</div>',
        '<div class="counts">' + "".join(
            f'<span class="{k}" data-count="{k}">{counts[k]} {LABEL[k]}</span>' for k in LABEL if counts[k]) + "</div>",
    ]
    failing = [b for b in board if b["state"] == "fail"]
    if failing:
        parts.append('<section class="attention" id="attention"><h2>Needs attention</h2><ul>')
        parts += [f"<li><strong>{_e(b['service'])}</strong> ({_e(b['group'])}): {_e(b['note'])}</li>" for b in failing]
        parts.append("</ul></section>")
    parts.append('<table id="board"><thead><tr><th>service</th><th>state</th><th>last apply</th><th>last smoke</th>'
                 "<th>age</th><th>cert days left</th><th>note</th></tr></thead><tbody>")
    group = object()
    for b in board:
        if b["group"] != group:
            group = b["group"]
            parts.append(f'<tr class="group"><th colspan="7">{_e(group)}</th></tr>')
        cert = b["cert_days_left"]
        parts.append(
            f'<tr class="service s-{b["state"]}" data-service="{_e(b["service"])}" data-state="{b["state"]}">'
            f'<td class="name"><strong>{_e(b["service"])}</strong></td>'
            f'<td class="state"><span class="badge">{LABEL[b["state"]]}</span></td>'
            f'<td>{_event_cell(b["last_apply"])}</td><td>{_event_cell(b["last_smoke"])}</td>'
            f'<td class="num">{_e(age_text(b["age"]))}</td><td class="num">{"-" if cert is None else _e(cert)}</td>'
            f'<td class="note">{_e(b["note"])}</td></tr>'
        )
    parts.append("</tbody></table>")
    parts.append("<footer>ralf status board · data from the ralf journal</footer></body></html>")
    return "\n".join(parts) + "\n"
