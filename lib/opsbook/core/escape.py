"""Text someone else wrote (database names, log lines, errors) made inert for a message's reader: one clean line,
Slack's three escapes, and Markdown code spans and escapes that no renderer turns into links, images or HTML."""
from __future__ import annotations

import re

# C0 controls but tab, DEL and C1 (terminal escapes, NUL), and the bidi marks, embeddings, overrides and isolates
# that make text read differently from what it holds (CVE-2021-42574, "Trojan Source")
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MD_PUNCT = re.compile(r"([\\`*_\[\]<>&|~:!#])")  # inline Markdown syntax (links, images, HTML, code, emphasis)
BACKTICKS = re.compile(r"`+")


def line(text) -> str:
    """One line: no control or bidi characters, every run of white space (newlines too) one space."""
    spaced = " ".join(str(text if text is not None else "").split())  # newlines, tabs: spaces
    return " ".join(UNSAFE.sub("", spaced).split())  # the rest: dropped


def slack(text: str) -> str:
    """Slack's escaping (api.slack.com/reference/surfaces/formatting#escaping): `&`, `<`, `>` and nothing else, so
    `<!channel>` and `<url|label>` written by someone else are shown, never acted on."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_text(text) -> str:
    """A short value (a title, a target name) as Markdown text: its syntax characters backslash-escaped."""
    return MD_PUNCT.sub(r"\\\1", line(text))


def md_code(text) -> str:
    """Untrusted text as one code span: nothing inside is a link, an image, HTML or emphasis. The fence is longer
    than any run of backticks inside, and a space on each side keeps a leading or trailing backtick inside."""
    s = line(text)
    if not s:
        return ""
    fence = "`" * (max((len(m) for m in BACKTICKS.findall(s)), default=0) + 1)
    return f"{fence} {s} {fence}"


def md_cell(text) -> str:
    """Untrusted text in a table cell: code spans split at each `|`, which is written `\\|` between them. A table
    row is split at pipes before any code span is seen (GFM), and `\\\\|` (text ending in a backslash) would split
    it too; here every pipe follows a backtick and one backslash, whatever the text held."""
    return "\\|".join(md_code(part) for part in line(text).split("|"))
