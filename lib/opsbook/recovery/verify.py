"""Backup verification, step by step: find or take the backup, read it whole, restore it into a scratch
database, compare with live, time it; each step judged as a backup.* check."""
from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

from ..database.session import conninfo_of
from . import archive, compare, dump, partial, restore, rto, script
from . import scratch as scratch_mod
from .runbook import DEMO_BACKUPS_KEEP, ClientChoice, backups_folder, judge, user_path
from .tools import dump_conninfo, session_for, session_tls

CHECKS = ("backup.client", "backup.missing", "backup.age", "backup.integrity", "backup.restore",
          "backup.completeness", "backup.restore_time")
DISK_HEADROOM = 1.2  # a restore needs the live data's size and then some (indexes built, WAL)


def objectives(thresholds: dict | None, *, rpo_hours: float | None = None, rto_minutes: float | None = None) -> dict:
    """The runbook's `thresholds` with rpo_hours/rto_minutes folded in (they win when given; None leaves the
    config file's or the default)."""
    from ..core.errors import ParameterError  # noqa: PLC0415

    for name, value in (("rpo_hours", rpo_hours), ("rto_minutes", rto_minutes)):
        if value is not None and not (float(value) > 0):  # `not >` catches NaN too
            raise ParameterError(f"{name} must be a positive number of {name.split('_')[1]}, not {value!r}")
    out = {k: dict(v) for k, v in (thresholds or {}).items()}
    if rpo_hours is not None:
        out.setdefault("backup.age", {})["rpo_hours"] = rpo_hours
    if rto_minutes is not None:
        out.setdefault("backup.restore_time", {})["rto_minutes"] = rto_minutes
    return out


def _frame(rows=None, columns=None, **attrs):
    import pandas as pd  # noqa: PLC0415

    df = pd.DataFrame(rows or [], columns=columns)
    df.attrs.update(attrs)
    return df


class BackupVerification:
    """One verification run. The live target is only read: pg_dump and read-only sessions. Restores go into a
    scratch database named opsbook_verify_<time> on the restore server, dropped when `run()` ends."""

    def __init__(self, rb, *, backup: str | None = None, take_backup: bool = False, dump_format: str = "custom",
                 restore_target: str | None = None, client_bindir: str | None = None, jobs: int = 1,
                 exact_count_max_rows: int = compare.EXACT_COUNT_MAX_ROWS):
        self.rb = rb
        self.backup_spec, self.take_backup, self.dump_format = backup, take_backup, dump_format
        self.restore_target, self.client_bindir, self.jobs = restore_target, client_bindir, max(1, int(jobs))
        self.exact_count_max_rows = exact_count_max_rows
        self.clients = ClientChoice(client_bindir)
        self.dump: dump.DumpResult | None = None
        self.located: archive.Located | None = None
        self.backup: archive.Backup | None = None
        self.readable = False
        self.result: restore.RestoreResult | None = None
        self.scratch: scratch_mod.Scratch | None = None
        self.plain_extensions: list = []
        self.refusal = None  # script.Refusal: the plain script holds what must never run
        self.jobs_note: str | None = None
        self.completeness: compare.Completeness | None = None
        self.model: rto.RestoreModel | None = None
        self.live_bytes: int | None = None
        self.live_role: str | None = None  # the role live rows were counted as
        self._tmp: Path | None = None

    # ------------------------------------------------------------------ the steps
    def run(self) -> "BackupVerification":
        try:
            self.find_backup()
            self.check_integrity()
            self.restore_and_compare()
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            judge(self.rb, "backup.client", self.clients.frame())
        return self

    def find_backup(self) -> None:
        """Take a dump now (take_backup) or locate the newest one; judge backup.missing and backup.age."""
        if self.take_backup:
            self.located = self._take()
        else:
            spec = user_path(self.backup_spec) if self.backup_spec else backups_folder(self.rb.target)
            self.located = archive.locate(spec)
        self.backup = self.located.backup
        if self.backup is not None:
            header_error = archive.read_header(self.backup, self.clients.for_reading(self.backup))
            self.readable = header_error is None
        considered = [b.row() for b in self.located.considered]
        judge(self.rb, "backup.missing", _frame(
            considered, ["path", "format", "size_bytes", "taken_at", "taken_from", "dbname", "dumped_from",
                         "dumped_by"],
            searched=self.located.searched, chosen=str(self.backup.path) if self.backup else None,
            reason=self.located.reason, take_backup=self.take_backup,
            taken_now=self.take_backup and self.backup is not None,
            dump_error=self.dump.error if self.dump and not self.dump.ok else None,
            dump_s=self.dump.duration_s if self.dump else None,
            size_bytes=self.backup.size_bytes if self.backup else 0))
        age = []
        if self.backup is not None:
            now = dt.datetime.now(dt.timezone.utc)
            age = [{"path": str(self.backup.path), "taken_at": f"{self.backup.taken_at:%Y-%m-%d %H:%M:%S} UTC",
                    "taken_from": self.backup.taken_from,
                    "age_hours": (now - self.backup.taken_at).total_seconds() / 3600}]
        judge(self.rb, "backup.age", _frame(age, ["path", "taken_at", "taken_from", "age_hours"],
                                            skipped=None if age else "no backup to date"))

    def check_integrity(self) -> None:
        if self.backup is None:
            df = _frame(skipped="no backup to read")
        else:
            df = archive.integrity(self.backup, self.clients.for_reading(self.backup))
            if self.backup.format in ("plain", "plain.gz"):
                df = self._scan_script(df)
            df.attrs.update(path=str(self.backup.path), format=self.backup.format, size_bytes=self.backup.size_bytes)
            self.readable = bool(df["ok"].all())
        judge(self.rb, "backup.integrity", df)

    def restore_and_compare(self) -> None:
        """Restore into a scratch database, compare with live and time it; the scratch database is dropped even
        when the restore fails. A damaged backup is still restored as far as it goes: that is what would happen
        in an emergency, and the errors say where it breaks."""
        reason = self._cannot_restore()
        if reason:
            for cid in ("backup.restore", "backup.completeness", "backup.restore_time"):
                judge(self.rb, cid, _frame(skipped=reason))
            return
        try:
            self._restore()
        except Exception as e:  # noqa: BLE001 - the report must still say what happened; scratch already dropped
            from ..core.redact import redact_sql  # noqa: PLC0415

            message = redact_sql(" ".join(f"{type(e).__name__}: {e}".split()))[:400]
            for cid in ("backup.restore", "backup.completeness", "backup.restore_time"):
                if cid not in self.rb.results:
                    judge(self.rb, cid, _frame(fatal=message, command="", duration_s=0) if cid == "backup.restore"
                          else _frame(skipped=f"the restore step failed: {message}"))

    def _restore(self) -> None:
        live_tables = compare.tables(self.rb.db) if self.rb.connected else None
        self.live_bytes = int(live_tables["size_bytes"].sum()) if live_tables is not None else None
        attrs = {"path": str(self.backup.path)}
        if not self.restore_target:
            short = self._disk_short()
            if short:
                judge(self.rb, "backup.restore", _frame(fatal=short, restore_server="a throwaway cluster", **attrs))
                for cid in ("backup.completeness", "backup.restore_time"):
                    judge(self.rb, cid, _frame(skipped="the restore was not attempted"))
                return
        timeout_s = float(self.rb.thresholds_for("backup.restore_time")["rto_minutes"]) * 60
        restored_tables = None
        server = None if self.restore_target else self.clients.for_scratch(self.backup)
        with scratch_mod.open_scratch(self.rb.config, self.restore_target, self.rb.target, "verify",
                                      server) as scratch:
            self.scratch = scratch
            attrs.update(restore_server=scratch.label)
            client = self.clients.for_restore(scratch.admin_conninfo, self.backup)
            if client is None:
                for cid in ("backup.restore", "backup.completeness", "backup.restore_time"):
                    judge(self.rb, cid, _frame(skipped=f"no client tools: {self.clients.error}"))
                return
            scratch_mod.prepare(scratch, self.backup, self.clients.for_reading(self.backup),
                                self.rb.db if self.rb.connected else None, self.plain_extensions)
            jobs, self.jobs_note = scratch.jobs_cap(self.jobs)
            self.result = restore.restore(self.backup, client, scratch.conninfo, jobs=jobs, timeout_s=timeout_s,
                                          scratch=scratch)
            if self.result.completed:
                restored_tables, self.completeness = self._compare(scratch, live_tables)
        errors = self.result.errors_frame()
        errors.attrs.update(attrs, **restore_attrs(scratch, self.result), jobs_note=self.jobs_note)
        judge(self.rb, "backup.restore", errors)
        judge(self.rb, "backup.completeness", self._completeness_frame(),
              also=partial.uncounted_tables(self.completeness.tables if self.completeness else None, self.live_role))
        judge(self.rb, "backup.restore_time", self._timing_frame(restored_tables))

    # ------------------------------------------------------------------ what the notebook shows and records
    def timeline(self):
        return self.result.events_frame() if self.result else None

    def objects_summary(self):
        return self.completeness.summary() if self.completeness else None

    def differences(self):
        """Objects and tables that are not the same in the restore as live."""
        if not self.completeness:
            return None
        o = self.completeness.objects
        return o[o["status"] != "restored"][["kind", "schema", "name", "status", "definition"]]

    def record(self):
        """Record the numbers kept for trends (backup age, restore seconds, tables and rows verified, sizes);
        returns them as a table."""
        import pandas as pd  # noqa: PLC0415

        from ..report import record as runrecord  # noqa: PLC0415

        out: dict = {}
        age = self.rb.data("backup.age")
        if age is not None and len(age):
            out["backup_age_hours"] = round(float(age.iloc[0]["age_hours"]), 3)
        if self.backup is not None:
            out["backup_size_bytes"] = int(self.backup.size_bytes)
        if self.dump is not None and self.dump.ok:
            out["dump_seconds"] = round(self.dump.duration_s, 3)
        if self.result is not None:
            out["restore_seconds"] = round(self.result.duration_s, 3)
            out["restore_errors"] = len(self.result.errors)
        if self.completeness is not None:
            t = self.completeness.tables
            both = t[t["live_rows"].notna() & t["restored_rows"].notna()]
            out["tables_verified"] = int(len(both))
            out["rows_verified"] = int(both["restored_rows"].sum())
        if self.model is not None:
            out["restored_size_bytes"] = int(self.model.restored_bytes)
            if self.live_bytes:
                out["predicted_restore_seconds"] = round(self.model.predict_s(self.live_bytes), 1)
        for name, value in out.items():
            runrecord.record(name, value)
        return pd.DataFrame(list(out.items()), columns=["metric", "value"], dtype=object)

    # ------------------------------------------------------------------ internals
    def _take(self) -> archive.Located:
        if self.dump_format not in dump.FORMATS:
            return archive.Located("(pg_dump)", None, reason=f"dump_format {self.dump_format!r} is not one of "
                                   f"{', '.join(dump.FORMATS)}")
        if not self.rb.connected:
            return archive.Located("(pg_dump)", None, reason="the live database could not be reached, so no "
                                   "backup could be taken")
        if self.rb.db.proxied:  # pg_dump sets search_path and more for its session: a pooler lends that on
            return archive.Located("(pg_dump)", None, reason=(
                "no backup was taken: this target goes through a connection pooler or proxy, and pg_dump's session "
                "settings (search_path, timeouts) would stay on the server connection the pooler lends to the "
                "application next; point a target at the database's direct connection to take a dump"))
        blocked = partial.dump_blocked(self.rb.db)
        if blocked:
            return archive.Located("(pg_dump)", None, reason=blocked)
        live = dump_conninfo(conninfo_of(self.rb.target), session_tls(self.rb.db))  # TLS at least the session's
        client = self.clients.for_dump(self.rb.db.server_version_num, live)
        if client is None:
            return archive.Located("(pg_dump)", None, reason=str(self.clients.error))
        dest, keep = self._dump_destination()
        self.dump = dump.take(client, live, dest, self.dump_format)
        if not self.dump.ok:
            return archive.Located(str(dest), None, reason=self.dump.error or "pg_dump failed")
        if keep:
            dump.prune(dest.parent, keep, prefix=dump.name_prefix(self.rb.target.name))
        b = archive.describe(dest)
        return archive.Located(str(dest), b, [b])

    def _dump_destination(self) -> tuple[Path, int]:
        """(path, how many dumps to keep there or 0): into `backup` when it names a folder or a new path, else the
        target's backups folder, else a temporary folder removed at the end (a dump holds all the data: it does
        not belong beside a report that gets shared)."""
        name = dump.dump_name(self.rb.target.name, self.dump_format)
        if self.backup_spec:
            p = user_path(self.backup_spec)
            return (p / name if p.is_dir() and not (p / "toc.dat").exists() else p), 0
        folder = backups_folder(self.rb.target)
        if folder is not None:
            dump.private_folder(folder)
            if self.rb.target.embedded:
                folder.chmod(0o700)  # the demo's folder is opsbook's own: private even if an older opsbook made it
            return folder / name, DEMO_BACKUPS_KEEP if self.rb.target.embedded else 0
        self._tmp = Path(tempfile.mkdtemp(prefix="opsbook-dump-"))
        return self._tmp / name, 0

    def _scan_script(self, df):
        """A plain script is read through the same guard that feeds psql: a psql meta-command or a database-level
        statement is a refusal, named by its line, and nothing of the script runs."""
        import time  # noqa: PLC0415

        import pandas as pd  # noqa: PLC0415

        t0 = time.perf_counter()
        scan = script.scan(self.backup)
        self.plain_extensions = scan.extensions
        self.refusal = scan.refusal
        ok = scan.refusal is None
        message = (f"{scan.lines:,} lines lexed as psql would: no meta-command outside COPY data"
                   + (" (\\connect from pg_dump -C: the contents go into the scratch database)" if scan.connects
                      else "") if ok else f"refused: {scan.refusal}")
        row = {"step": "script content (psql meta-commands)", "ok": ok,
               "duration_s": round(time.perf_counter() - t0, 3), "message": message, "refused": not ok}
        return pd.concat([df, pd.DataFrame([row])], ignore_index=True)

    def _cannot_restore(self) -> str | None:
        if self.refusal is not None:
            return f"not restored: the script was refused ({self.refusal})"
        if self.backup is None:
            return "no backup to restore"
        if self.backup.format is None:
            return f"nothing restorable: {self.backup.problem}"
        return None

    def _disk_short(self) -> str | None:
        from ..database.sandbox.cluster import free_bytes  # noqa: PLC0415
        from ..database.sandbox.liveness import scratch_root  # noqa: PLC0415

        need = (self.live_bytes or self.backup.size_bytes * 5) * DISK_HEADROOM
        free = free_bytes()
        if free < need:
            from ..core.display import human_bytes  # noqa: PLC0415

            return (f"not attempted: {human_bytes(free)} free on {scratch_root()}, the restore needs about "
                    f"{human_bytes(need)}; free disk or restore elsewhere (restore_target)")
        return None

    def _compare(self, scratch, live_tables):
        with session_for(scratch.conninfo, "scratch", statement_timeout_ms=self.rb.statement_timeout_ms) as s:
            restored_tables = compare.tables(s)
            if not self.rb.connected:
                return restored_tables, None
            if (live_tables["estimated_rows"] > self.exact_count_max_rows).any():
                _analyze(scratch.conninfo)  # so big tables have estimates comparable with live's
                restored_tables = compare.tables(s)
            live_counts = compare.count_rows(self.rb.db, live_tables, exact_max_rows=self.exact_count_max_rows)
            self.live_role = live_counts.attrs.get("role")
            restored_counts = compare.count_rows(s, restored_tables, exact_max_rows=self.exact_count_max_rows,
                                                 estimate_from=live_tables, live=False)
            result = compare.Completeness(compare.compare_objects(compare.inventory(self.rb.db),
                                                                  compare.inventory(s)),
                                          compare.compare_tables(live_counts, restored_counts))
        return restored_tables, result

    def _completeness_frame(self):
        if self.completeness is None:
            why = ("the live database could not be reached" if not self.rb.connected
                   else f"the restore did not complete: {self.result.fatal}")
            return _frame(skipped=why)
        df = self.completeness.tables.copy()
        df.attrs["objects"] = self.completeness.objects
        return df

    def _timing_frame(self, restored_tables):
        if self.result is None or not self.result.completed or restored_tables is None:
            return _frame(skipped="no completed restore to time")
        rto_minutes = float(self.rb.thresholds_for("backup.restore_time")["rto_minutes"])
        self.model = rto.fit(self.result, int(restored_tables["size_bytes"].sum()))
        df = rto.predictions(self.model, self.live_bytes, rto_minutes)
        live_bytes = self.live_bytes or self.model.restored_bytes
        df.attrs.update(measured_s=self.model.measured_s, scaling_s=self.model.scaling_s,
                        fixed_s=self.model.fixed_s, restored_bytes=self.model.restored_bytes, live_bytes=live_bytes,
                        predicted_live_s=max(self.model.predict_s(live_bytes), self.model.measured_s))
        return df


def restore_attrs(scratch, result) -> dict:
    """What backup.restore says about where and how the restore ran (shared with table recovery)."""
    return {"scratch": scratch.name, "scratch_kind": scratch.kind, "dropped": scratch.dropped,
            "drop_error": scratch.drop_error, "fatal": result.fatal, "command": result.command,
            "duration_s": result.duration_s, "returncode": result.returncode, "refused": result.refused,
            "left_out": result.left_out, "contained": scratch.contained(), "dropped_orphans": scratch.dropped_orphans,
            "leftovers": scratch.leftovers}


def _analyze(conninfo: str) -> None:
    from ..database.session import raw_connect  # noqa: PLC0415

    with raw_connect(conninfo, read_only=False, statement_timeout_ms=0) as conn:
        conn.execute("ANALYZE")
