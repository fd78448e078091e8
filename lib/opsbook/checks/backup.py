"""Backups and recovery: is there a recent backup, does it read whole, restore, match live, fit the RTO.

The data comes from opsbook.recovery (files, pg_dump, pg_restore, a scratch database), not from one query, so
these checks have no data function: the runbook gathers, `opsbook.recovery.runbook.judge()` judges.
"""
from __future__ import annotations

from collections import Counter

from ..core.display import human_bytes, human_seconds
from ..core.findings import Finding, Severity, ok, skipped
from .registry import Check, Threshold, register

VERIFY = ("backup-verification",)
RECOVER = ("table-recovery",)
GUIDES_RPO = "source guides 001 and 004 (9.2): RPO 24 hours with daily backups"


def _nothing(check: str, df, what: str) -> list[Finding] | None:
    """The skipped finding when an earlier step left nothing to judge (its reason rides in df.attrs)."""
    if df is None or df.attrs.get("skipped"):
        reason = (df.attrs.get("skipped") if df is not None else None) or f"no {what}"
        return [skipped(check, reason, "see the findings before this one")]
    return None


# ------------------------------------------------------------------------------------------ backup.client
def judge_client(df) -> list[Finding]:
    """Which pg_dump/pg_restore/psql did the work; a client older than the server is an error, said plainly."""
    error = df.attrs.get("error")
    if error:
        return [Finding("backup.client", Severity.CRITICAL, "no usable pg_dump/pg_restore for this server",
                        detail=error, value=df.attrs.get("kind"),
                        remediation="Install the PostgreSQL client of the server's major version or newer "
                                    "(postgresql-client-NN from apt.postgresql.org) and point client_bindir at "
                                    "its bin directory; for remote targets it must be built with SSL.")]
    if df.empty:
        return [skipped("backup.client", "no client tool was needed (nothing to dump, read or restore)")]
    used = "; ".join(f"{r.purpose}: {r.path} {r.version} ({r.source}, {'with' if r.ssl else 'without'} SSL)"
                     for r in df.itertuples())
    versions = ", ".join(sorted({f"PostgreSQL {r.version} ({r.source})" for r in df.itertuples()}))
    return [ok("backup.client", f"client tools: {versions}", detail=used, value=df.iloc[0]["version"])]


# ------------------------------------------------------------------------------------------ backup.missing
def judge_missing(df) -> list[Finding]:
    if none := _nothing("backup.missing", df, "backup looked for"):
        return none
    a = df.attrs
    if a.get("dump_error") or (a.get("take_backup") and not a.get("chosen")):
        return [Finding("backup.missing", Severity.CRITICAL, "no backup was taken: pg_dump could not run or failed",
                        detail=a.get("dump_error") or a.get("reason", ""), objects=[a.get("searched", "")],
                        remediation="Fix the cause above and run again; until then there is no fresh backup.")]
    if not a.get("chosen"):
        return [Finding("backup.missing", Severity.CRITICAL, f"no backup found at {a.get('searched')}",
                        detail=a.get("reason", ""), objects=[a.get("searched", "")],
                        remediation="Point `backup` at a dump file, a directory dump or a folder of dumps, or set "
                                    "`backups = \"/path\"` on the target in opsbook.toml; take one now with "
                                    "take_backup=True. The guides ask for daily backups (004 8.1, 8.5).")]
    detail = f"{len(df)} backup(s) considered under {a.get('searched')}; the newest is verified."
    if a.get("taken_now"):
        detail = f"taken now with pg_dump in {a.get('dump_s', 0):.1f} s ({human_bytes(a.get('size_bytes', 0))})."
    return [ok("backup.missing", f"backup found: {a['chosen']}", detail=detail, objects=[a["chosen"]])]


# ------------------------------------------------------------------------------------------ backup.age
def judge_age(df, *, rpo_hours: float = 24, warning_pct: float = 90) -> list[Finding]:
    if (none := _nothing("backup.age", df, "backup")) or df.empty:
        return none or [skipped("backup.age", "no backup to date")]
    row = df.iloc[0]
    age = float(row["age_hours"])
    detail = f"taken at {row['taken_at']} (from {row['taken_from']}); RPO {rpo_hours:g} h."
    if age > rpo_hours:
        return [Finding("backup.age", Severity.CRITICAL, f"newest backup is {age:.1f} h old: older than the RPO "
                        f"of {rpo_hours:g} h", detail=detail + f" A failure now would lose {age:.1f} h of data.",
                        objects=[row["path"]], value=round(age, 2), threshold=rpo_hours,
                        remediation="Check the backup job (cron, Supabase dashboard > Database > Backups) and take "
                                    "a backup now; consider PITR if 24 h of loss is too much (004 9.2).")]
    if age > rpo_hours * warning_pct / 100:
        return [Finding("backup.age", Severity.WARNING, f"newest backup is {age:.1f} h old: the next one is due",
                        detail=detail, objects=[row["path"]], value=round(age, 2),
                        threshold=round(rpo_hours * warning_pct / 100, 2),
                        remediation="Make sure the next scheduled backup runs.")]
    return [ok("backup.age", f"newest backup is {age:.1f} h old (RPO {rpo_hours:g} h)", detail=detail,
               value=round(age, 2), threshold=rpo_hours)]


# ------------------------------------------------------------------------------------------ backup.integrity
def judge_integrity(df) -> list[Finding]:
    if none := _nothing("backup.integrity", df, "backup to read"):
        return none
    failed = df[~df["ok"].astype(bool)]
    fmt = df.attrs.get("format") or "unknown format"
    if len(failed) and "refused" in failed and failed["refused"].fillna(False).astype(bool).any():
        step = failed[failed["refused"].fillna(False).astype(bool)].iloc[0]
        return [Finding("backup.integrity", Severity.CRITICAL, "backup refused: the SQL script holds a psql "
                        "meta-command or statement that must never run",
                        detail=f"{step['message']}. Nothing of the script was run: a plain backup is fed to psql, "
                               "which would run it on this machine.", objects=[df.attrs.get("path", "")],
                        value=step["step"],
                        remediation="pg_dump never writes such lines outside COPY data: treat the file as hostile "
                                    "or tampered with, keep it for the post-mortem and verify another backup.")]
    if len(failed):
        step = failed.iloc[0]
        return [Finding("backup.integrity", Severity.CRITICAL, f"backup does not read whole: {step['step']} failed",
                        detail=f"{step['message']} ({fmt}, {human_bytes(df.attrs.get('size_bytes', 0))})",
                        objects=[df.attrs.get("path", "")], value=step["step"],
                        remediation="This backup cannot be restored as it is. Take a new one now, and find out "
                                    "why this one is damaged (disk full, copy cut short, storage corruption).")]
    seconds = float(df["duration_s"].sum())
    return [ok("backup.integrity", f"backup reads whole ({fmt}, {human_bytes(df.attrs.get('size_bytes', 0))})",
               detail="; ".join(f"{r.step}: {r.message}" for r in df.itertuples()) + f" ({seconds:.1f} s)",
               value=round(seconds, 3))]


# ------------------------------------------------------------------------------------------ backup.restore
def judge_restore(df) -> list[Finding]:
    a = df.attrs if df is not None else {}
    out: list[Finding] = []
    if a.get("drop_error"):
        out.append(Finding("backup.restore", Severity.CRITICAL,
                           f"scratch database {a.get('scratch')} could not be dropped", detail=a["drop_error"],
                           objects=[a.get("scratch", "")],
                           remediation=f'DROP DATABASE IF EXISTS "{a.get("scratch")}" WITH (FORCE);  -- on '
                                       f"{a.get('restore_server', 'the restore server')}"))
    if a.get("dropped_orphans"):
        gone = list(a["dropped_orphans"])
        out.append(Finding("backup.restore", Severity.INFO, f"dropped {len(gone)} scratch restore(s) left by runs "
                           "that were killed", objects=[f"{o.get('where', 'scratch')} {o['name']}" for o in gone],
                           detail="; ".join(f"{o['name']}: {o.get('why', '')}, {human_bytes(o.get('size_bytes', 0))}"
                                            for o in gone) + ". Scratch restores owned by a run still going are "
                                  "never touched (each holds a lock for as long as its run lives).",
                           value=len(gone)))
    if a.get("leftovers"):
        names = list(a["leftovers"])
        out.append(Finding("backup.restore", Severity.INFO, f"{len(names)} scratch database(s) no run holds any more",
                           objects=names, detail="No running opsbook holds them (each run holds an advisory lock "
                           "on its own); they are dropped by the first run that finds them older than 24 h.",
                           remediation="\n".join(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE);' for n in names)))
    if a.get("refused"):
        out.insert(0, Finding("backup.restore", Severity.CRITICAL, "restore refused: the backup holds a command "
                              "that must never run", detail=f"{a['refused']}. Nothing after it was run; the "
                              "scratch was deleted.", objects=[a.get("path", "")],
                              remediation="Do not restore this file with psql. Find out who wrote it: pg_dump never "
                                          "writes such lines."))
        return out
    if none := _nothing("backup.restore", df, "restore"):
        return none + out
    where = (f"into a throwaway cluster ({a.get('scratch')})" if a.get("scratch_kind") == "cluster" else
             f"into scratch database {a.get('scratch')} on {a.get('restore_server')}")
    dropped = ("" if "dropped" not in a else " The scratch was dropped afterwards." if a.get("dropped") else
               " The scratch was NOT dropped.")
    notes = " ".join(x for x in (a.get("contained"), _left_out(a.get("left_out")), a.get("jobs_note")) if x)
    notes = f"\n{notes}" if notes else ""
    if a.get("fatal"):
        fatal = a["fatal"]
        title = fatal if len(fatal) <= 160 else fatal[:157].rsplit(" ", 1)[0] + " ..."
        out.insert(0, Finding("backup.restore", Severity.CRITICAL, "restore failed: " + title,
                              detail=f"{'pg_restore' if 'pg_restore' in str(a.get('command')) else 'The restore'} "
                                     f"said: {fatal}\n"
                                     f"{a.get('command')}; stopped after {a.get('duration_s', 0):.1f} s with "
                                     f"{len(df)} statement error(s) before it.{dropped}{notes}",
                              objects=[a.get("path", "")], value=a.get("returncode"),
                              remediation="This backup does not restore. Take a new backup and verify it; keep "
                                          "the damaged one for the post-mortem."))
        return out
    if len(df):
        common = Counter(df["message"]).most_common(3)
        quoted = "; ".join(f"{n}x {m}" for m, n in common)
        out.insert(0, Finding("backup.restore", Severity.WARNING,
                              f"restore completed with {len(df)} error(s) {where}",
                              detail=f"Most frequent: {quoted}. The completeness check below shows what is "
                                     f"missing because of them.{dropped}{notes}", value=len(df),
                              remediation="Errors about missing roles or extensions come from the restore server: "
                                          "create the roles (CREATE ROLE name NOLOGIN) or restore into a server "
                                          "that has them (restore_target). Other errors mean the backup would "
                                          "not restore cleanly in an emergency either."))
        return out
    out.insert(0, ok("backup.restore", f"restored without errors in {human_seconds(a.get('duration_s', 0))} {where}",
                     detail=f"{a.get('command')}.{dropped}{notes}",
                     value=round(float(a.get("duration_s", 0)), 3)))
    return out


def _left_out(left_out) -> str:
    if not left_out:
        return ""
    return "Left out of the script: " + "; ".join(f"{n}x {why}" for why, n in left_out.items()) + "."


# ------------------------------------------------------------------------------------------ backup.completeness
def judge_completeness(df) -> list[Finding]:
    if none := _nothing("backup.completeness", df, "restored database to compare"):
        return none
    objects = df.attrs.get("objects")
    out: list[Finding] = []
    if objects is not None and len(objects):
        missing = objects[objects["status"] == "missing from restore"]
        invalid = missing[~missing["valid"].astype(bool)] if "valid" in missing else missing.iloc[0:0]
        missing = missing.drop(invalid.index)
        if len(invalid):
            out.append(Finding("backup.completeness", Severity.INFO,
                               f"{len(invalid)} invalid index(es) live are not in the backup",
                               objects=[f"index {r.schema}.{r.name}" for r in invalid.itertuples()],
                               detail="pg_dump leaves out invalid indexes (a CREATE INDEX CONCURRENTLY that failed). "
                                      "They do nothing live either; after a restore they are simply absent.",
                               remediation="Drop and recreate them live (REINDEX INDEX CONCURRENTLY), so the next "
                                           "backup has them."))
        if len(missing):
            kinds = ", ".join(f"{n} {k}" for k, n in missing["kind"].value_counts().sort_index().items())
            out.append(Finding("backup.completeness", Severity.CRITICAL,
                               f"{len(missing)} object(s) live are missing from the restore: {kinds}",
                               objects=[f"{r.kind} {r.schema}.{r.name}" if r.kind != "schema" else f"schema {r.name}"
                                        for r in missing.itertuples()], value=len(missing),
                               remediation="A restore from this backup would not bring these back. If they were "
                                           "created after the backup, the next backup will have them; otherwise "
                                           "check the dump options (--schema, --exclude-table) and restore errors."))
        extra = objects[objects["status"] == "only in backup"]
        if len(extra):
            out.append(Finding("backup.completeness", Severity.INFO,
                               f"{len(extra)} object(s) in the backup no longer exist live",
                               objects=[f"{r.kind} {r.schema}.{r.name}" for r in extra.itertuples()],
                               value=len(extra), detail="dropped since the backup was taken"))
    empty = df[df["status"] == "restored empty"]
    if len(empty):
        out.append(Finding("backup.completeness", Severity.WARNING,
                           f"{len(empty)} table(s) restored empty while live has rows",
                           objects=[f"{r.schema}.{r.table}" for r in empty.itertuples()], value=len(empty),
                           remediation="The backup holds no data for these tables: were they excluded "
                                       "(--exclude-table-data), or empty when it was taken?"))
    drift = df[df["status"].isin(["more live", "more in backup"])]
    if len(drift):
        newer = int(drift.loc[drift["diff_rows"] > 0, "diff_rows"].sum())
        gone = int(-drift.loc[drift["diff_rows"] < 0, "diff_rows"].sum())
        out.append(Finding("backup.completeness", Severity.INFO,
                           f"{len(drift)} table(s) differ from live in row count",
                           detail=f"{newer:,} row(s) more live than in the backup (written since it was taken: a "
                                  f"restore would lose them); {gone:,} row(s) more in the backup (deleted since: "
                                  "the table-recovery runbook gets them back).",
                           objects=[f"{r.schema}.{r.table} ({int(r.diff_rows):+,})" for r in drift.itertuples()],
                           value=newer + gone))
    estimated = df[df["status"] == "estimate, not compared"]
    if len(estimated):
        out.append(Finding("backup.completeness", Severity.INFO,
                           f"{len(estimated)} big table(s) not compared: their planner estimates differ",
                           objects=[f"{r.schema}.{r.table} (live ~{int(r.live_rows):,}, backup ~{int(r.restored_rows):,})"
                                    for r in estimated.itertuples()], value=len(estimated),
                           detail="Too big to count exactly (exact_count_max_rows), and live's estimate may be "
                                  "stale (not analyzed since it changed): estimate, not compared. Nothing is said "
                                  "about rows written or deleted since the backup.",
                           remediation="ANALYZE these tables live and run again, or raise exact_count_max_rows to "
                                       "count them."))
    uncounted = df[df["status"].isin(["not counted"])]
    if len(uncounted):
        out.append(Finding("backup.completeness", Severity.INFO, f"{len(uncounted)} table(s) could not be counted",
                           objects=[f"{r.schema}.{r.table}: {r.error}" for r in uncounted.itertuples()],
                           remediation="grant SELECT on them to the monitoring role, or raise statement_timeout_ms"))
    if not [f for f in out if f.severity.rank >= Severity.WARNING.rank] and not len(drift) and not len(uncounted) \
            and not len(estimated):
        n_obj = int(objects["restored"].sum()) if objects is not None else 0
        rows = int(df["restored_rows"].fillna(0).sum())
        estimated = int((~df["exact"]).sum())
        note = f" ({estimated} big table(s) compared by estimate)" if estimated else ""
        out.insert(0, ok("backup.completeness", f"restore matches live: {n_obj} objects, {len(df)} tables, "
                         f"{rows:,} rows{note}", value=rows))
    return out


# ------------------------------------------------------------------------------------------ backup.restore_time
def judge_restore_time(df, *, rto_minutes: float = 240, database_restore_minutes: float = 60) -> list[Finding]:
    if (none := _nothing("backup.restore_time", df, "completed restore to time")) or df.empty:
        return none or [skipped("backup.restore_time", "no completed restore to time")]
    a = df.attrs
    predicted = float(a["predicted_live_s"])
    minutes = predicted / 60
    detail = (f"Measured: {human_seconds(a['measured_s'])} for {human_bytes(a['restored_bytes'])} of tables and "
              f"indexes ({human_seconds(a['scaling_s'])} of it copying rows and building indexes). At the live "
              f"database's {human_bytes(a['live_bytes'])} that predicts {human_seconds(predicted)}, on a server like "
              "the restore server; a restore into a new Supabase project adds network time.")
    title = f"restore at live size predicted at {human_seconds(predicted)} (RTO {rto_minutes:g} min)"
    if minutes > rto_minutes:
        return [Finding("backup.restore_time", Severity.CRITICAL, title, detail=detail, value=round(minutes, 2),
                        threshold=rto_minutes,
                        remediation="The RTO cannot be met by restoring this dump: use parallel restore "
                                    "(jobs), PITR, a standby, or agree on a longer RTO.")]
    if minutes > database_restore_minutes:
        return [Finding("backup.restore_time", Severity.WARNING, title, detail=detail, value=round(minutes, 2),
                        threshold=database_restore_minutes,
                        remediation="Over the guide's 1-hour budget for database restoration (004 9.1): try "
                                    "parallel restore (jobs) and plan the rest of the recovery around it.")]
    return [ok("backup.restore_time", title, detail=detail, value=round(minutes, 2), threshold=rto_minutes)]


# ------------------------------------------------------------------------------------------ table recovery
def judge_key(df) -> list[Finding]:
    row = df.iloc[0]
    problem = row.get("problem") if "problem" in row else None
    if problem == "unreachable":
        return [Finding("recovery.key", Severity.CRITICAL, f"the live database could not be reached: {row['table']} "
                        "could not be looked up", detail=row.get("message") or "", objects=[row["table"]],
                        remediation="See connectivity: nothing can be recovered until the database answers.")]
    if problem in ("key", "filter"):
        return [Finding("recovery.key", Severity.CRITICAL, f"{'key' if problem == 'key' else 'filter'} does not fit "
                        f"{row['table']}: {row['message']}", objects=[row["table"]],
                        remediation="Name columns of the table: key=\"col1,col2\"" if problem == "key" else
                        "Give one SQL condition on the table's columns, e.g. filter=\"created_at >= '2026-11-01'\"")]
    if not row["exists"]:
        return [Finding("recovery.key", Severity.CRITICAL, f"table {row['table']} does not exist live",
                        detail=row.get("message") or "", objects=[row["table"]],
                        remediation="Check the name (schema.table). If the whole table was dropped, restore it "
                                    "from the backup with pg_restore -t into a scratch database first.")]
    if not row["key_columns"]:
        cands = row.get("candidates") or "none"
        return [Finding("recovery.key", Severity.CRITICAL,
                        f"{row['table']} has no primary key: name the columns that identify a row",
                        detail=f"Without a key, a changed row and a missing row look alike. Unique indexes that "
                               f"could serve: {cands}.", objects=[row["table"]],
                        remediation="Run again with key=\"col1,col2\" (columns that are unique and not null).")]
    return [ok("recovery.key", f"rows of {row['table']} are matched by {row['key_source']} ({row['key_columns']})",
               objects=[row["table"]])]


def judge_source(df) -> list[Finding]:
    if none := _nothing("recovery.source", df, "backup"):
        return none
    row = df.iloc[0]
    if not row["has_data"]:
        return [Finding("recovery.source", Severity.CRITICAL, f"the backup holds no data for {row['table']}",
                        detail=row.get("message") or "", objects=[row["backup"]],
                        remediation="Use an older backup (backup=...) that has the table's data.")]
    return [ok("recovery.source", f"the backup holds {int(row['backup_rows']):,} rows of {row['table']}",
               detail=f"{row['backup']}, taken at {row['taken_at']:%Y-%m-%d %H:%M} UTC", objects=[row["backup"]],
               value=int(row["backup_rows"]))]


def judge_missing_rows(df) -> list[Finding]:
    if none := _nothing("recovery.missing_rows", df, "comparison"):
        return none
    a = df.attrs
    n = int(a["missing"])
    if a.get("duplicates"):
        return [Finding("recovery.missing_rows", Severity.CRITICAL, f"the key ({a['key']}) is not unique: rows "
                        "cannot be matched", detail=f"{a['duplicates']:,} duplicate key value(s). Nothing was "
                        "written.", value=int(a["duplicates"]),
                        remediation="Name columns that identify one row each: key=\"col1,col2\".")]
    counts = (f"backup {a['backup_rows']:,} rows, live {a['live_rows']:,}; {a['new_live']:,} live rows are newer "
              "than the backup")
    if n == 0:
        return [ok("recovery.missing_rows", f"no rows of {a['table']} are missing live", detail=counts, value=0)]
    note = f" {a['demo_note']}" if a.get("demo_note") else ""
    return [Finding("recovery.missing_rows", Severity.WARNING, f"{n:,} row(s) of {a['table']} are in the backup "
                    "but missing live", detail=f"{counts}. Written to {a.get('csv')} and {a.get('sql')}.{note}",
                    objects=[a.get("csv", ""), a.get("sql", "")], value=n,
                    remediation=f"Review the rows, then run again with apply=True confirm=\"{a['confirm_word']}\" "
                                "to insert them in one transaction (or run the .sql script with psql).")]


def judge_changed_rows(df) -> list[Finding]:
    if none := _nothing("recovery.changed_rows", df, "comparison"):
        return none
    n = int(df.attrs["changed"])
    if n == 0:
        return [ok("recovery.changed_rows", "no row differs between the backup and live", value=0)]
    return [Finding("recovery.changed_rows", Severity.INFO, f"{n:,} row(s) differ between the backup and live",
                    detail="Changed since the backup, by the app or by the incident; opsbook never overwrites "
                           "live rows. Compare the versions below and fix by hand if needed.", value=n)]


def judge_apply(df) -> list[Finding]:
    row = df.iloc[0]
    mode = row["mode"]
    if mode == "applied":
        return [ok("recovery.apply", f"inserted {int(row['inserted']):,} row(s); {row['table']} has "
                   f"{int(row['after']):,} rows (was {int(row['before']):,})", detail=row["message"],
                   value=int(row["inserted"]))]
    if mode == "failed":
        return [Finding("recovery.apply", Severity.CRITICAL, "insert failed and was rolled back: nothing changed",
                        detail=row["message"], remediation="Fix the cause and run again; the .sql script beside the "
                        "report is an alternative (psql -1 -f).")]
    if mode == "refused":
        return [Finding("recovery.apply", Severity.WARNING, "apply=True without the right confirm: nothing written",
                        detail=row["message"], remediation=f"confirm must equal the table's name: "
                                                           f"confirm=\"{row['table'].split('.')[-1]}\"")]
    return [Finding("recovery.apply", Severity.INFO, "dry run: nothing was written to the live database",
                    detail=row["message"])]


def _register(cid: str, description: str, judge, runbooks, thresholds=(), queries=()) -> Check:
    return register(Check(id=cid, description=description, judge=judge, thresholds=thresholds, queries=queries,
                          runbooks=runbooks))


CLIENT = _register("backup.client", "Which pg_dump/pg_restore/psql binary and version did the work; a client older "
                   "than the server, or without the SSL a remote target needs, is a clear error.", judge_client,
                   VERIFY + RECOVER)
MISSING = _register("backup.missing", "A backup exists where one was expected (file, directory dump, newest in a "
                    "folder), or pg_dump took one now.", judge_missing, VERIFY + RECOVER)
AGE = _register("backup.age", "The newest backup's age against the recovery point objective.", judge_age, VERIFY,
                thresholds=(Threshold("rpo_hours", 24, "hours", GUIDES_RPO),
                            Threshold("warning_pct", 90, "% of the RPO", "opsbook default: the next daily backup "
                                      "is due")))
INTEGRITY = _register("backup.integrity", "The archive reads whole: table of contents and every data block "
                      "(pg_restore), or the SQL script's header, gzip CRC and closing line.", judge_integrity, VERIFY)
RESTORE = _register("backup.restore", "The backup restores into a scratch database (opsbook_verify_<time>, "
                    "opsbook_recover_<time>) in a throwaway cluster, as a role that is not a superuser, deleted "
                    "afterwards even on failure; restore errors quoted, orphans of killed runs dropped.", judge_restore,
                    VERIFY + RECOVER)
COMPLETENESS = _register("backup.completeness", "Restored against live: tables, row counts, indexes, constraints, "
                         "RLS and policies, functions, triggers, types, extensions.", judge_completeness, VERIFY,
                         queries=("backup/objects", "backup/tables"))
RESTORE_TIME = _register("backup.restore_time", "Measured restore time, extrapolated to the live database's size, "
                         "against the recovery time objective.", judge_restore_time, VERIFY,
                         thresholds=(Threshold("rto_minutes", 240, "minutes", "source guides 001 and 004 (9.1): "
                                               "RTO 4 hours"),
                                     Threshold("database_restore_minutes", 60, "minutes", "source guide 004 9.1: "
                                               "database restoration budget of 1 hour")))
KEY = _register("recovery.key", "The key that matches backup rows to live rows: the primary key, or columns the "
                "user names; never guessed.", judge_key, RECOVER, queries=("recovery/columns", "recovery/unique_keys"))
SOURCE = _register("recovery.source", "The backup holds the table's data.", judge_source, RECOVER)
MISSING_ROWS = _register("recovery.missing_rows", "Rows in the backup that are missing live, written as CSV and as "
                         "an INSERT ... ON CONFLICT DO NOTHING script.", judge_missing_rows, RECOVER)
CHANGED_ROWS = _register("recovery.changed_rows", "Rows whose content differs between the backup and live.",
                         judge_changed_rows, RECOVER)
APPLY = _register("recovery.apply", "What was written live: nothing (dry run), or the missing rows inserted in one "
                  "transaction with counts verified.", judge_apply, RECOVER, queries=("recovery/referencing",))
