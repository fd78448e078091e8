"""The HTML body of a mail: the verdict sentences, one row per target (status, worst, top finding, report) and the
findings that matter, with inline styles only (mail readers drop style sheets and never run scripts). Everything
that came from the database or a report is escaped."""
from __future__ import annotations

from typing import Any

from ...core.display import COLORS, esc

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2328"
CELL = "padding:4px 8px;border-bottom:1px solid #e4e4e7;text-align:left;vertical-align:top"
MUTED = "color:#667085"


def badge(severity: str | None) -> str:
    s = severity if severity in COLORS else "ok"
    return (f'<span style="display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:.85em;'
            f'font-weight:600;background:{COLORS[s]}">{esc(severity or "ok")}</span>')


def html_body(notice, config, url_prefix: str | None, attached: set[str] | None = None) -> str:
    """The page for a one-target message or a digest (`notice.rows`); `attached`: targets whose report is attached."""
    rows = notice.rows
    attached = attached or set()
    head = f'<h2 style="margin:0 0 .3em;font-size:1.3em">{esc(notice.subject().removeprefix("[opsbook] "))}</h2>'
    facts = [f"schedule <b>{esc(notice.schedule)}</b>" if notice.schedule else "",
             f"slot {esc(rows[0].slot)}" if rows and rows[0].slot else "",
             f"report month <b>{esc(notice.month_label())}</b>" if notice.month else ""]
    out = [head, f'<p style="{MUTED};margin:0 0 1em">{" · ".join(f for f in facts if f)}</p>']
    if len(rows) == 1 and not getattr(notice, "pending", None):
        out.append(_target(rows[0], config, url_prefix, attached, alone=True))
    else:
        out.append(_table(notice, config, url_prefix, attached))
        out += [_target(r, config, url_prefix, attached, alone=False) for r in rows if r.verdict or r.top
                or r.resolved or r.error]
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(notice.subject())}</title></head>'
            f'<body style="{FONT};font-size:15px;line-height:1.45;margin:0;padding:16px;max-width:980px">'
            + "".join(out) + f'<p style="{MUTED};font-size:.85em;margin-top:2em">sent by opsbook</p></body></html>')


def _status(r) -> str:
    if r.status == "ok":
        return "ran"
    return f'<b style="color:{COLORS["critical"]}">{esc(r.status)}</b>'


def _worst(r) -> str | None:
    if r.status != "ok":
        return None
    return next((s for s in ("critical", "warning", "info", "ok") if r.counts.get(s)), "ok")


def _mark(r, f: dict[str, Any]) -> str:
    since = r.standing.get(f.get("check"))
    if since:
        return f' <span style="{MUTED}">still open since {esc(since)}</span>'
    return ' <b style="color:#175cd3">new</b>' if r.classified else ""


def _report(r, config, url_prefix: str | None, attached: set[str]) -> str:
    where = r.where(config, url_prefix)
    if not where:
        return f'<span style="{MUTED}">no report</span>'
    note = " (attached)" if r.target in attached else ""
    if url_prefix:
        return f'<a href="{esc(where)}">open the report</a>{note}'
    return f'<code style="font-size:.85em">{esc(where)}</code>{note}'


def _table(notice, config, url_prefix, attached) -> str:
    heads = ["target", "status", "worst", "top finding", "report"]
    body = []
    for r in notice.rows:
        top = r.top[0] if r.top else None
        finding = (f"{badge(top['severity'])} <code>{esc(top['check'])}</code> {esc(top['title'])}{_mark(r, top)}"
                   + (f'<br><span style="{MUTED}">and {len(r.top) - 1} more</span>' if len(r.top) > 1 else "")
                   if top else (f'<span style="{MUTED}">{esc(r.error)}</span>' if r.error else
                                f'<span style="{MUTED}">none</span>'))
        if r.resolved:
            finding += f'<br><span style="color:{COLORS["ok"]}">{len(r.resolved)} resolved</span>'
        worst = _worst(r)
        cells = [f"<b>{esc(r.target)}</b>", _status(r), badge(worst) if worst else "", finding,
                 _report(r, config, url_prefix, attached)]
        body.append("<tr>" + "".join(f'<td style="{CELL}">{c}</td>' for c in cells) + "</tr>")
    for p in getattr(notice, "pending", []):
        cells = [f"<b>{esc(p['target'])}</b>", f"retrying (attempt {p['attempt']} of {p['max_attempts']})", "",
                 f'<span style="{MUTED}">{esc(p.get("error") or "")}</span>', ""]
        body.append("<tr>" + "".join(f'<td style="{CELL}">{c}</td>' for c in cells) + "</tr>")
    return ('<table style="border-collapse:collapse;width:100%;font-size:.93em;margin-bottom:1em"><thead><tr>'
            + "".join(f'<th style="{CELL};background:#f4f4f5">{h}</th>' for h in heads)
            + f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _target(r, config, url_prefix, attached, *, alone: bool) -> str:
    worst = _worst(r)
    colour = COLORS.get(worst or "critical", COLORS["critical"])
    out = [] if alone else [f'<h3 style="margin:1.2em 0 .3em;font-size:1.1em">{esc(r.target)}</h3>']
    if r.verdict:
        out.append(f'<div style="border-left:6px solid {colour};padding:.4em 1em;background:#fafafa;margin:.4em 0">'
                   + "".join(f'<p style="margin:.3em 0">{esc(s)}</p>' for s in r.verdict) + "</div>")
    if r.error:
        out.append(f'<p><b style="color:{COLORS["critical"]}">The run failed</b>'
                   + (f" (attempt {r.attempt})" if r.attempt else "") + f": {esc(r.error)}</p>")
    if r.top:
        items = "".join(f'<li style="margin:.15em 0">{badge(f["severity"])} <code>{esc(f["check"])}</code> '
                        f"{esc(f['title'])}{_mark(r, f)}</li>" for f in r.top)
        out.append(f'<ul style="padding-left:1.2em;margin:.4em 0">{items}</ul>')
    elif r.status == "ok" and alone:
        out.append("<p>No warning or critical finding.</p>")
    if r.resolved:
        items = "".join(f'<li style="margin:.15em 0"><span style="color:{COLORS["ok"]};font-weight:600">resolved'
                        f"</span> <code>{esc(f['check'])}</code> {esc(f['title'])} "
                        f'<span style="{MUTED}">(was {esc(f["severity"])}, open since {esc(f["since"])})</span></li>'
                        for f in r.resolved)
        out.append(f'<ul style="padding-left:1.2em;margin:.4em 0">{items}</ul>')
    if alone:
        out.append(f"<p>Report: {_report(r, config, url_prefix, attached)}</p>")
    return "".join(out)
