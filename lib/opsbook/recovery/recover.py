"""Table recovery, step by step: which key, which backup, restore that table into a scratch database, compare with
live by key, write the missing rows as CSV and SQL, and insert them only when apply and confirm both say so."""
from __future__ import annotations

import datetime as dt

from ..core.redact import redact_sql
from ..database.session import conninfo_of
from . import archive, demo_rows, partial, restore, rows, script
from . import scratch as scratch_mod
from .encoding import sql
from .runbook import ClientChoice, backups_folder, judge, user_path

CHECKS = ("recovery.key", "backup.missing", "backup.restore", "recovery.source", "recovery.missing_rows",
          "recovery.changed_rows", "recovery.apply")


def _one_line(e: Exception) -> str:
    return redact_sql(" ".join(f"{type(e).__name__}: {e}".split()))[:400]


def _frame(rows_=None, columns=None, **attrs):
    import pandas as pd  # noqa: PLC0415

    df = pd.DataFrame(rows_ or [], columns=columns)
    df.attrs.update(attrs)
    return df


class TableRecovery:
    """One recovery run for one table. Live is read through read-only sessions; the only write is the insert of
    the missing rows, in one transaction, with apply=True and confirm equal to the table's name."""

    def __init__(self, rb, *, table: str, backup: str | None = None, key: str | None = None,
                 filter: str | None = None, apply: bool = False, confirm: str = "",  # noqa: A002 - the parameter's name
                 restore_target: str | None = None, client_bindir: str | None = None, max_rows_shown: int = 50):
        self.rb, self.table, self.backup_spec, self.key = rb, table, backup, key
        self.filter, self.apply_requested, self.confirm = filter, apply, (confirm or "").strip()
        self.restore_target, self.max_rows_shown = restore_target, max_rows_shown
        self.clients = ClientChoice(client_bindir)
        self.info: rows.TableInfo | None = None
        self.access: partial.LiveAccess | None = None  # whether this role may read the live rows, and why not
        self.backup: archive.Backup | None = None
        self.result: restore.RestoreResult | None = None
        self.diff: rows.Diff | None = None
        self.missing_sample = None
        self.changed_sample = None
        self.referencing = None
        self.applied: rows.Applied | None = None
        self.artifacts: dict[str, str] = {}
        self.failure: str | None = None

    def run(self) -> "TableRecovery":
        done: set[str] = set()
        try:
            if self._resolve(done) and self._locate(done):
                self._restore_and_compare(done)
        except Exception as e:  # noqa: BLE001 - the report must still say what happened; scratch already dropped
            message = redact_sql(" ".join(f"{type(e).__name__}: {e}".split()))[:400]
            if "backup.restore" not in done:
                judge(self.rb, "backup.restore", _frame(fatal=message, command="", duration_s=0))
                done.add("backup.restore")
            self.failure = message
        finally:
            restored = self.result is not None and self.result.completed
            for cid in CHECKS:
                if cid not in done:
                    # after a restore that worked, a comparison that was not made is a warning: the run's answer
                    # is missing, and the verdict must not read healthy
                    judge(self.rb, cid, _frame(skipped=self._why_not()) if cid != "recovery.apply"
                          else self._apply_frame(),
                          at_least="warning" if restored and cid == "recovery.missing_rows" else None)
            judge(self.rb, "backup.client", self.clients.frame())
        return self

    # ------------------------------------------------------------------ steps
    def _resolve(self, done: set[str]) -> bool:
        """The table and its key, from live. No primary key and no key parameter: stop and ask, never guess."""
        row = {"table": self.table, "exists": False, "key_columns": "", "key_source": "", "candidates": "",
               "message": ""}
        if not self.rb.connected:
            row.update(message="the live database could not be reached", problem="unreachable")
            return self._judge_key(row, done)
        blocked = partial.schema_blocked(self.rb.db, rows.with_schema(self.table))
        if blocked is not None:
            row.update(exists=True, message=blocked.detail, problem="privilege")
            judge(self.rb, "recovery.key", _frame([row]), instead=[blocked])
            done.add("recovery.key")
            return False
        try:
            rows.check_filter(self.filter)
            self.info = rows.table_info(self.rb.db, self.table, self.key)
        except rows.KeyColumnError as e:
            row.update(exists=True, message=str(e), problem="key")
            return self._judge_key(row, done)
        except ValueError as e:
            row.update(exists=True, message=str(e), problem="filter")
            return self._judge_key(row, done)
        if self.info is None:
            return self._judge_key(row, done)
        self.access = partial.live_access(self.rb.db, self.info)
        # a filter is planned on live only where live can be read (else: "permission denied", nothing learnt)
        problem = None if self.access.blind else rows.try_filter(self.rb.db, self.info, self.filter)
        if problem:
            row.update(table=self.info.display, exists=True, message=problem, problem="filter")
            return self._judge_key(row, done)
        self.referencing = rows.referencing(self.rb.db, self.info)
        row.update(table=self.info.display, exists=True, key_columns=", ".join(self.info.key),
                   key_source=self.info.key_source, candidates="; ".join(self.info.candidates) or "none")
        return self._judge_key(row, done) and bool(self.info.key)

    def _judge_key(self, row: dict, done: set[str]) -> bool:
        judge(self.rb, "recovery.key", _frame([row]))
        done.add("recovery.key")
        return row["exists"] and bool(row["key_columns"]) and not row["message"]

    def _locate(self, done: set[str]) -> bool:
        spec = user_path(self.backup_spec) if self.backup_spec else backups_folder(self.rb.target)
        located = archive.locate(spec)
        self.backup = located.backup
        if self.backup is not None and self.backup.format is not None:
            archive.read_header(self.backup, self.clients.for_reading(self.backup))
        usable = self.backup is not None and self.backup.format is not None
        judge(self.rb, "backup.missing", _frame(
            [b.row() for b in located.considered], ["path", "format", "size_bytes", "taken_at", "taken_from",
                                                    "dbname", "dumped_from", "dumped_by"],
            searched=located.searched, chosen=str(self.backup.path) if usable else None,
            reason=located.reason or (self.backup.problem if self.backup else "")))
        done.add("backup.missing")
        return usable

    def _restore_and_compare(self, done: set[str]) -> None:
        from ..database.session import raw_connect, unit  # noqa: PLC0415
        from .verify import restore_attrs  # noqa: PLC0415

        scan = script.scan(self.backup) if not self.backup.is_archive else None
        if scan is not None and scan.refusal is not None:  # nothing of a hostile script runs, not even its start
            judge(self.rb, "backup.restore", _frame(refused=str(scan.refusal), path=str(self.backup.path)))
            done.add("backup.restore")
            self.failure = f"the backup was refused: {scan.refusal}"
            return
        extensions = scan.extensions if scan is not None else []
        server = None if self.restore_target else self.clients.for_scratch(self.backup)
        with scratch_mod.open_scratch(self.rb.config, self.restore_target, self.rb.target, "recover",
                                      server) as scratch:
            client = self.clients.for_restore(scratch.admin_conninfo, self.backup)
            if client is None:
                return
            scratch_mod.prepare(scratch, self.backup, self.clients.for_reading(self.backup), self.rb.db, extensions)
            self.result = restore.restore_table(self.backup, client, scratch.conninfo, self.info.schema,
                                                self.info.name, scratch=scratch)
            if self.result.completed and self.access.blind:
                with raw_connect(scratch.conninfo, read_only=False, statement_timeout_ms=0) as sc:
                    self._not_compared(sc, done)
            elif self.result.completed:
                try:
                    with raw_connect(scratch.conninfo, read_only=False, statement_timeout_ms=0) as sc, \
                            raw_connect(conninfo_of(self.rb.target),
                                        statement_timeout_ms=self.rb.statement_timeout_ms) as lc, \
                            unit(lc, statement_timeout_ms=self.rb.statement_timeout_ms):
                        self._compare(sc, lc, done)
                except Exception as e:  # noqa: BLE001 - the restore worked; reading live or comparing did not
                    self.failure = ("comparing the backup's rows with live failed, nothing was written: "
                                    f"{_one_line(e)}")
        errors = self.result.errors_frame()
        errors.attrs.update(**restore_attrs(scratch, self.result), restore_server=scratch.label,
                            path=str(self.backup.path))
        judge(self.rb, "backup.restore", errors)
        done.add("backup.restore")

    def _source(self, scratch_conn, done: set[str]) -> tuple[list[str], int]:
        """The restored table's columns and rows, judged as recovery.source."""
        backup_cols = [r[0] for r in scratch_conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", (self.info.qualified,)).fetchall()]
        src = {"table": self.info.display, "backup": str(self.backup.path), "taken_at": self.backup.taken_at,
               "has_data": bool(backup_cols), "backup_rows": 0, "message": ""}
        if backup_cols:
            (src["backup_rows"],) = scratch_conn.execute(
                sql(scratch_conn, f"SELECT count(*) FROM {self.info.qualified}")).fetchone()
            src["has_data"] = src["backup_rows"] > 0 or self._archive_has_data()
        else:
            src["message"] = f"the backup has no table {self.info.display}"
        judge(self.rb, "recovery.source", _frame([src]))
        done.add("recovery.source")
        return backup_cols, src["backup_rows"]

    def _not_compared(self, scratch_conn, done: set[str]) -> None:
        """This role may not read the live rows: the backup's side is still told, the comparison is a warning that
        says why it was not made, and rows fewer live than in the backup (by the server's count) a finding."""
        backup_cols, backup_rows = self._source(scratch_conn, done)
        if not backup_cols:
            return
        why = partial.not_compared(self.access)
        judge(self.rb, "recovery.missing_rows", _frame(skipped=why), at_least="warning",
              detail="Nothing was compared by key, so no row was found missing or written out; the verdict is "
                     "incomplete.", remediation=self.access.remediation,
              also=partial.fewer_live(self.info, self.access, backup_rows, self.filter))
        judge(self.rb, "recovery.changed_rows", _frame(skipped=why))
        done.update({"recovery.missing_rows", "recovery.changed_rows"})

    def _compare(self, scratch_conn, live_conn, done: set[str]) -> None:
        backup_cols, _ = self._source(scratch_conn, done)
        if not backup_cols:
            return
        self.diff = rows.diff(live_conn, scratch_conn, self.info, backup_cols, self.filter)
        d = self.diff
        shown = [c for c in self.info.columns if c in backup_cols]
        self.missing_sample = rows.sample(scratch_conn, self.info, shown, "missing live", self.max_rows_shown)
        self.changed_sample = rows.changed_versions(live_conn, scratch_conn, self.info, shown, self.max_rows_shown)
        duplicates = d.duplicate_keys_backup or d.duplicate_keys_live
        if d.missing and not duplicates:
            self._write_artifacts(scratch_conn)
        self.missing_sample.attrs.update(
            table=self.info.display, missing=d.missing, backup_rows=d.backup_rows, live_rows=d.live_rows,
            new_live=d.new_live, confirm_word=self.info.name, duplicates=duplicates,
            key=", ".join(self.info.key), demo_note=demo_rows.deleted_note(self.rb.target), **self.artifacts)
        judge(self.rb, "recovery.missing_rows", self.missing_sample)
        self.changed_sample.attrs.update(changed=d.changed)
        judge(self.rb, "recovery.changed_rows", self.changed_sample)
        done.update({"recovery.missing_rows", "recovery.changed_rows"})
        if self.apply_requested and self._confirmed() and d.missing and not duplicates:
            self.applied = rows.apply(conninfo_of(self.rb.target), scratch_conn, self.info, d.missing,
                                      statement_timeout_ms=max(self.rb.statement_timeout_ms, 60_000))
        judge(self.rb, "recovery.apply", self._apply_frame())
        done.add("recovery.apply")

    def _write_artifacts(self, scratch_conn) -> None:
        from ..report import record as runrecord  # noqa: PLC0415

        csv_path = runrecord.artifact_path(".missing.csv")
        sql_path = runrecord.artifact_path(".missing.sql")
        rows.write_csv(scratch_conn, self.info, csv_path)
        now = dt.datetime.now(dt.timezone.utc)
        header = [f"opsbook table-recovery: rows of {self.info.display} in the backup but missing live",
                  f"backup: {self.backup.path} (taken {self.backup.taken_at:%Y-%m-%d %H:%M} UTC)",
                  f"generated {now:%Y-%m-%d %H:%M:%S} UTC; matched by {', '.join(self.info.key)}"
                  + (f"; filter: {self.filter}" if self.filter else ""),
                  "Existing rows are left alone (ON CONFLICT DO NOTHING). Review, then run in one transaction:",
                  f"psql -X -v ON_ERROR_STOP=1 -f {sql_path.name}"]
        rows.write_sql(scratch_conn, self.info, sql_path, header)
        self.artifacts = {"csv": str(csv_path), "sql": str(sql_path)}

    def _archive_has_data(self) -> bool:
        """An empty restored table is 'no data' unless the archive really holds an (empty) data entry for it."""
        if not self.backup.is_archive:
            return True
        toc = archive.toc(self.backup, self.clients.for_reading(self.backup))
        hit = toc[(toc["kind"] == "TABLE DATA") & (toc["schema"] == self.info.schema) & (toc["name"] == self.info.name)]
        return len(hit) > 0

    # ------------------------------------------------------------------ state as data
    def _confirmed(self) -> bool:
        return bool(self.info) and self.confirm in {self.info.name, self.info.display, self.table}

    def _apply_frame(self):
        name = self.info.display if self.info else self.table
        base = {"table": name, "inserted": 0, "before": None, "after": None}
        if self.applied is not None:
            return _frame([{**base, "mode": self.applied.mode, "inserted": self.applied.inserted,
                            "before": self.applied.before, "after": self.applied.after,
                            "message": self.applied.message}])
        if self.apply_requested and not self._confirmed():
            msg = (f"confirm={self.confirm!r} does not equal the table's name {self.info.name!r}" if self.info
                   else "the table could not be resolved")
            return _frame([{**base, "mode": "refused", "message": msg}])
        if self.diff is not None and self.diff.missing and (self.diff.duplicate_keys_backup or
                                                            self.diff.duplicate_keys_live):
            return _frame([{**base, "mode": "dry run", "message": "the key is not unique: nothing can be applied"}])
        if self.apply_requested and self.diff is not None and not self.diff.missing:
            return _frame([{**base, "mode": "dry run", "message": "apply=True, but there was nothing to insert"}])
        hint = (f"to insert the missing rows, run again with apply=True and confirm=\"{self.info.name}\""
                if self.diff is not None and self.diff.missing else "nothing was compared, so nothing to apply"
                if self.diff is None else "nothing is missing: nothing to apply")
        return _frame([{**base, "mode": "dry run", "message": hint}])

    def _why_not(self) -> str:
        if self.failure:
            return f"the recovery step failed: {self.failure}"
        if not self.rb.connected:
            return "the live database could not be reached"
        if self.info is None or not self.info.key:
            return "no table or no key to match rows by (see recovery.key)"
        if self.backup is None or self.backup.format is None:
            return "no usable backup (see backup.missing)"
        if self.clients.error:
            return f"no client tools: {self.clients.error}"
        if self.result is not None and not self.result.completed:
            return f"the restore did not complete: {redact_sql(self.result.fatal or '')}"
        if self.access is not None and self.access.blind:
            return partial.not_compared(self.access)
        return "an earlier step did not complete"

    def summary_counts(self) -> dict[str, int]:
        d = self.diff
        return {} if d is None else {"same": d.same, "missing live": d.missing, "changed": d.changed,
                                     "newer live": d.new_live}

    def record(self):
        """Record what was found and done; returns it as a table."""
        import pandas as pd  # noqa: PLC0415

        from ..report import record as runrecord  # noqa: PLC0415

        out: dict = {}
        if self.diff is not None:
            out.update(recovery_missing_rows=self.diff.missing, recovery_changed_rows=self.diff.changed,
                       recovery_backup_rows=self.diff.backup_rows, recovery_live_rows=self.diff.live_rows)
        if self.result is not None:
            out["restore_seconds"] = round(self.result.duration_s, 3)
        out["recovery_rows_inserted"] = self.applied.inserted if self.applied and self.applied.mode == "applied" else 0
        for name, value in out.items():
            runrecord.record(name, value)
        return pd.DataFrame(list(out.items()), columns=["metric", "value"], dtype=object)
