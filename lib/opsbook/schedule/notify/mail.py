"""A mail a manager opens: text and HTML alternatives, the reports attached so that each opens alone (HTML with
plotly.js inlined, or PDF), and the headers a mail reader sorts and threads by (Date, Message-ID, From)."""
from __future__ import annotations

import socket
import sys
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from .report_page import PdfUnavailable, pdf, self_contained

DEFAULT_MAX_ATTACH_MB = 20  # the encoded size of all attachments of one mail; most relays refuse 25 MB and more
B64 = 4 / 3  # base64 grows what it carries by a third


def sender(n) -> str:
    """`from` as configured (an address, or `Name <address>`), else opsbook at this host's fully qualified name."""
    configured = n.options.get("from")
    if configured:
        return configured
    host = socket.getfqdn() or "localhost"
    return str(Address("opsbook", "opsbook", host))


def build(config, n, notice) -> tuple[EmailMessage, list[str]]:
    """The mail for notifier `n` and a Message or Digest; also the notes on what could not be attached as asked."""
    o = n.options
    prefix = n.report_url_prefix
    attachments, notes = _attachments(config, n, notice)
    m = EmailMessage()
    m["Subject"] = notice.subject()
    m["From"] = sender(n)
    m["To"] = ", ".join(o["to"])
    m["Date"] = formatdate(localtime=True)
    domain = parseaddr(m["From"])[1].rpartition("@")[2] or None
    m["Message-ID"] = make_msgid(idstring="opsbook", domain=domain)
    text = notice.text(config, prefix)
    if notes:
        text += "\n\n" + "\n".join(notes)
    m.set_content(text)
    if not notice.test:
        page = notice.html(config, prefix, {t for t, _, _, _ in attachments})
        if notes:
            from ...core.display import esc  # noqa: PLC0415

            page = page.replace("</body>", "".join(f'<p style="color:#667085">{esc(x)}</p>' for x in notes)
                                + "</body>")
        m.add_alternative(page, subtype="html")
    for _, data, (maintype, subtype), name in attachments:
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m, notes


def _attachments(config, n, notice) -> tuple[list[tuple[str, bytes, tuple[str, str], str]], list[str]]:
    """(target, bytes, MIME type, file name) per report to attach, worst first, within `max_attach_mb`."""
    how = n.options.get("attach", "html")
    if how == "none" or notice.test:
        return [], []
    budget = float(n.options.get("max_attach_mb", DEFAULT_MAX_ATTACH_MB)) * 1024 * 1024
    rank = {"failed": 0, "critical": 1, "done": 2}
    out, notes, used = [], [], 0.0
    for r in sorted(notice.rows, key=lambda r: rank.get(r.event, 3)):
        if not r.report_html or not Path(r.report_html).is_file():
            continue
        try:
            page = self_contained(r.report_html, config.reports_dir, n.report_url_prefix)
        except (OSError, UnicodeDecodeError) as e:  # a report pruned or unreadable since the run: say so, send
            notes.append(f"The report of {r.target} could not be attached: {type(e).__name__}.")
            continue
        name = Path(r.report_html).name
        item = (r.target, page.encode("utf-8"), ("text", "html"), name)
        if how == "pdf":
            try:
                item = (r.target, pdf(page), ("application", "pdf"), Path(name).with_suffix(".pdf").name)
            except PdfUnavailable as e:
                note = f"The report of {r.target} is attached as HTML, not PDF: {e}."
                notes.append(note)
                print(f"opsbook: notifier {n.name!r}: {note}", file=sys.stderr)
        size = len(item[1]) * B64
        if used + size > budget:
            notes.append(f"The report of {r.target} is not attached: the attachments would pass max_attach_mb "
                         f"({budget / 1024 / 1024:g} MB).")
            continue
        used += size
        out.append(item)
    return out, notes
