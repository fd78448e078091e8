"""An earlier opsbook's timer, named without an id (one per user, whatever the configuration): the crontab entry
ending in MARKER alone (once split over lines by a newline in a configuration value) and the units
`opsbook-schedule.service`/`.timer`; which configuration it ran, so its own configuration migrates it."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

MANAGED = "(managed by `opsbook schedule install`; remove with `opsbook schedule uninstall`)"
MARKER = f"# opsbook schedule run-due {MANAGED}"  # the run-due line's marker; an earlier opsbook's ended in it alone
UNIT = "opsbook-schedule"  # the earlier unit name; now opsbook-{schedule,snapshot,watch}-ID
LINES = 50  # an entry an earlier opsbook split over lines (see cron_entry) spans at most this many


def cron_lines(lines: list[str], config_file: Path | None, *, every: bool, skip) -> set[int]:
    """The indexes of the earlier entries among crontab `lines` that ran `config_file` (all with `every`); `skip`
    tells a line of today's naming."""
    found: set[int] = set()
    for i, line in enumerate(lines):
        if not skip(line) and line.endswith(f" {MARKER}") and (every or runs(cron_config(line), config_file)):
            found.add(i)
    for i, line in enumerate(lines):
        if i in found or skip(line) or not line.startswith("* * * * * mkdir -p ") or MARKER in line:
            continue
        end = next((j for j in range(i + 1, min(len(lines), i + LINES)) if MARKER in lines[j]), None)
        text = "\n".join(lines[i:end + 1]) if end is not None else ""
        if end is not None and cron_entry(text) and (every or runs(cron_config(text), config_file)):
            found.update(range(i, end + 1))
    return found


def runs(found: tuple[bool, str | None], config_file: Path | None) -> bool:
    """Whether an earlier opsbook's timer, whose `--config` was `found`, runs `config_file`."""
    ok, path = found
    return ok and path == (str(Path(config_file).absolute()) if config_file is not None else None)


def cron_config(text: str) -> tuple[bool, str | None]:
    """(parsed, the --config path or None) of an earlier opsbook's crontab entry: its words end
    `[--config PATH] schedule run-due >> LOG 2>&1`."""
    head, tail = "* * * * * ", f" {MARKER}"
    if not (text.startswith(head) and text.endswith(tail)):
        return False, None
    try:
        words = shlex.split(text[len(head):-len(tail)].replace("\\%", "%"))
    except ValueError:
        return False, None
    if len(words) < 8 or words[-5:-2] != ["schedule", "run-due", ">>"]:
        return False, None
    return True, (words[-6] if words[-7] == "--config" else None)


def cron_entry(text: str) -> bool:
    """Whether `text` is, word for word, the crontab entry an earlier opsbook wrote (values quoted by shlex.quote,
    `%` as `\\%`), newlines inside its quoted values included."""
    head, tail = "* * * * * ", f" {MARKER}"
    if not (text.startswith(head) and text.endswith(tail)):
        return False
    try:
        words = shlex.split(text[len(head):-len(tail)].replace("\\%", "%"))
    except ValueError:
        return False
    return (len(words) in (12, 14) and words[:2] == ["mkdir", "-p"] and words[3] == "&&"
            and words[4].startswith("HOME=") and words[5].startswith("PATH=")
            and (len(words) == 12 or words[7] == "--config") and words[-5:-2] == ["schedule", "run-due", ">>"]
            and words[-2] == f"{words[2]}/schedule.log" and words[-1] == "2>&1")


def unit_files(folder: Path) -> list[Path]:
    candidates = [folder / f"{UNIT}.service", folder / f"{UNIT}.timer",
                  folder / "timers.target.wants" / f"{UNIT}.timer"]
    if folder.is_dir():
        candidates += sorted(folder.glob(f".{UNIT}.*tmp"))
    return candidates


def unit_runs(folder: Path, config_file: Path | None) -> bool:
    """Whether an earlier opsbook's unnamed unit is there and runs `config_file` (its ExecStart's --config)."""
    try:
        text = (folder / f"{UNIT}.service").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return any(p.is_symlink() or p.is_file() for p in unit_files(folder))  # leftovers only: ours to tidy
    starts = [line[len("ExecStart="):] for line in text.splitlines() if line.startswith("ExecStart=")]
    if len(starts) != 1:
        return False
    words = systemd_split(starts[0])
    if words is None or words[-2:] != ["schedule", "run-due"]:
        return False
    return runs((True, words[-3] if len(words) >= 4 and words[-4] == "--config" else None), config_file)


def systemd_split(value: str) -> list[str] | None:
    """A command line as an earlier opsbook quoted it (_systemd_word): plain or double-quoted words with `\\`
    escapes; `%%` and `$$` as `%` and `$`. None when it is not of that shape."""
    words = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', value):
        word = re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words or None
