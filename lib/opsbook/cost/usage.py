"""What was used this month, each number with where it came from: the database, a parameter or a usage CSV.

Usage CSV (an export of the dashboard's usage page, or written by hand), one row per day and metric:

    date,project_ref,metric,usage,unit
    2026-10-01,abcdefghijklmnop,egress,9.5,GB

- `metric` (required): a metric name or the dashboard's label, case and punctuation ignored; see METRICS for the
  names accepted (e.g. `egress`, `Cached Egress`, `FUNCTION_INVOCATIONS`, `Realtime Peak Connections`).
- `usage` (required; also accepted as `value`, `amount` or `quantity`): a number.
- `unit` (optional): GB, GiB, MB, KB, bytes for sizes (GB is the default for them); count otherwise.
- `date`, `project_ref` (optional): rows of all days and projects are combined: counters are summed (egress,
  invocations, messages, transformations), peaks and monthly active users take the maximum, sizes the mean
  (Supabase bills sizes per GB-hour, i.e. by the month's average). Unknown metrics are listed, not fatal.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ParameterError

GB = 1024 ** 3
# item -> (how rows combine, accepted metric names after normalising)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "egress": ("sum", ("egress", "total_egress", "egress_gb")),
    "cached_egress": ("sum", ("cached_egress", "cached_egress_gb")),
    "edge_invocations": ("sum", ("function_invocations", "edge_function_invocations", "edge_invocations",
                                 "func_invocations")),
    "realtime_messages": ("sum", ("realtime_messages", "realtime_message_count")),
    "realtime_peak_connections": ("max", ("realtime_peak_connections", "realtime_concurrent_peak_connections")),
    "image_transformations": ("sum", ("image_transformations", "storage_images_transformed",
                                      "storage_image_transformations")),
    "mau": ("max", ("mau", "monthly_active_users")),
    "sso_mau": ("max", ("sso_mau", "monthly_active_sso_users")),
    "third_party_mau": ("max", ("third_party_mau", "monthly_active_third_party_users")),
    "storage": ("mean", ("storage", "storage_size", "file_storage")),
    "disk": ("mean", ("disk", "disk_size", "disk_size_gb")),
    "database": ("mean", ("database_size", "db_size")),
}
SIZE_ITEMS = {"egress", "cached_egress", "storage", "disk", "database"}
UNITS = {"gb": 1.0, "gib": 1.0, "mb": 1 / 1024, "mib": 1 / 1024, "kb": 1 / 1024 ** 2, "kib": 1 / 1024 ** 2,
         "tb": 1024.0, "tib": 1024.0, "b": 1 / GB, "byte": 1 / GB, "bytes": 1 / GB}
# Parameters for what SQL cannot see: parameter name -> item.
PARAMS = {"egress_gb": "egress", "cached_egress_gb": "cached_egress", "edge_invocations": "edge_invocations",
          "realtime_messages": "realtime_messages", "realtime_peak_connections": "realtime_peak_connections",
          "image_transformations": "image_transformations"}
PARAM_OF = {v: k for k, v in PARAMS.items()}
MAU_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Quantity:
    """One usage number (None: not measured) and its provenance."""

    item: str
    value: float | None
    source: str  # database | parameter | usage CSV | history | what-if | not measured
    detail: str = ""


@dataclass
class Usage:
    """Usage for one month: items the bill prices, plus the database facts what-ifs need."""

    quantities: dict[str, Quantity]
    database_gb: float | None = None  # all databases on the server: what fills the disk
    databases: Any = None  # DataFrame: datname, size_bytes
    buckets: Any = None  # DataFrame: bucket_id, objects, size_bytes
    notes: list[str] = field(default_factory=list)

    def quantity(self, item: str) -> Quantity:
        return self.quantities.get(item) or Quantity(item, None, "not measured", _unmeasured_hint(item))

    def get(self, item: str) -> float:
        v = self.quantity(item).value
        return 0.0 if v is None else float(v)

    def but(self, source: str = "what-if", **values: float) -> "Usage":
        """A copy with some items replaced (for what-ifs, past months and projections)."""
        q = dict(self.quantities)
        for item, v in values.items():
            q[item] = Quantity(item, v, source, q.get(item, Quantity(item, None, "")).detail)
        return dataclasses.replace(self, quantities=q)

    def to_frame(self):
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame([dataclasses.asdict(q) for q in self.quantities.values()],
                            columns=["item", "value", "source", "detail"])


def _unmeasured_hint(item: str) -> str:
    p = PARAM_OF.get(item)
    if p:
        return f"not visible to SQL; pass -p {p}=... or a usage CSV; counted as 0"
    if item in ("storage", "mau", "disk", "database"):
        return "the database did not show it (see the notes below); pass a usage CSV; counted as 0"
    return "pass a usage CSV to include it; counted as 0"


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


_ALIASES = {alias: item for item, (_, names) in METRICS.items() for alias in names}


def read_csv(path: str | Path) -> tuple[dict[str, Quantity], list[str]]:
    """Quantities from a usage CSV, and notes (unknown metrics, rows combined)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ParameterError(f"usage_csv {p}: cannot be read ({e.__class__.__name__})") from None
    reader = csv.DictReader(text.splitlines())
    fields = {norm(f): f for f in (reader.fieldnames or [])}
    metric_col = fields.get("metric")
    value_col = next((fields[k] for k in ("usage", "value", "amount", "quantity") if k in fields), None)
    if not metric_col or not value_col:
        raise ParameterError(f"usage_csv {p}: needs columns metric and usage; found {', '.join(fields) or 'none'}")
    unit_col = fields.get("unit")
    rows: dict[str, list[float]] = {}
    unknown: set[str] = set()
    for n, row in enumerate(reader, start=2):
        metric = norm(row.get(metric_col) or "")
        if not metric:
            continue
        item = _ALIASES.get(metric)
        if item is None:
            unknown.add(row[metric_col])
            continue
        try:
            value = float(str(row[value_col]).replace(",", ""))
        except ValueError:
            raise ParameterError(f"usage_csv {p} line {n}: usage {row[value_col]!r} is not a number") from None
        unit = norm(row.get(unit_col) or "") if unit_col else ""
        if item in SIZE_ITEMS and unit:
            if unit not in UNITS:
                raise ParameterError(f"usage_csv {p} line {n}: unit {row[unit_col]!r} unknown; use "
                                     "GB, MB, KB, TB or bytes")
            value *= UNITS[unit]
        rows.setdefault(item, []).append(value)
    out = {}
    for item, values in rows.items():
        how = METRICS[item][0]
        v = sum(values) if how == "sum" else max(values) if how == "max" else sum(values) / len(values)
        out[item] = Quantity(item, v, "usage CSV", f"{p.name}: {how} of {len(values)} row{'s' * (len(values) > 1)}")
    notes = [f"usage CSV {p.name}: ignored unknown metric{'s' * (len(unknown) > 1)} "
             f"{', '.join(sorted(unknown))}"] if unknown else []
    return out, notes


def provisioned_disk_gb(database_gb: float, autoscale: dict[str, Any]) -> float:
    """The disk Supabase's auto-scaling would have grown to for this database size (whole GB per step)."""
    disk = float(autoscale.get("min_gb", 8))
    trigger = autoscale.get("trigger_pct", 90) / 100
    while database_gb >= trigger * disk:
        if disk < 1024:
            step = min(disk * autoscale.get("grow_pct", 50) / 100, autoscale.get("max_step_gb", 200))
        else:
            step = disk * autoscale.get("grow_pct_over_1tb", 20) / 100
        disk = float(math.ceil(disk + step))
    return disk


def from_database(db) -> tuple[dict[str, Quantity], dict[str, Any], list[str]]:
    """What SQL can see: database sizes, storage objects per bucket, monthly active users."""
    from ..database.degraded import skip_reason  # noqa: PLC0415

    q: dict[str, Quantity] = {}
    facts: dict[str, Any] = {}
    notes: list[str] = []
    dbs = db.fetch("cost/database_sizes")
    facts["databases"] = dbs
    total = float(dbs["size_bytes"].fillna(0).sum())
    facts["database_gb"] = total / GB
    q["database"] = Quantity("database", total / GB, "database",
                             f"sum of pg_database_size over {len(dbs)} database{'s' * (len(dbs) != 1)}")
    from ..database import supabase  # noqa: PLC0415

    try:
        buckets = supabase.fetch(db, "cost/storage_buckets", "storage")
        facts["buckets"] = buckets
        q["storage"] = Quantity("storage", float(buckets["size_bytes"].sum()) / GB, "database",
                                f"storage.objects: {int(buckets['objects'].sum()):,} objects in {len(buckets)} "
                                "bucket(s), sizes from metadata->>'size'")
    except Exception as e:  # noqa: BLE001 - no storage schema, no privilege: say so, carry on
        why = skip_reason(e)
        if why is None:
            raise
        notes.append(f"file storage not measured: {why[0]}")
    try:
        users = supabase.monthly_active_users(db, days=MAU_WINDOW_DAYS)
        mau = users.iloc[0]
        audit = "" if mau["audit_actors"] is None or mau["audit_actors"] != mau["audit_actors"] else \
            f", logged in / refreshed a token (auth.audit_log_entries): {int(mau['audit_actors']):,}"
        q["mau"] = Quantity("mau", float(mau["mau"]), "database",
                            f"distinct active users from {users.attrs['source']}: signed in "
                            f"(auth.users.last_sign_in_at): {int(mau['signed_in']):,}{audit}; "
                            f"{int(mau['users_total']):,} users in all")
    except Exception as e:  # noqa: BLE001
        why = skip_reason(e)
        if why is None:
            raise
        notes.append(f"monthly active users not measured: {why[0]}")
    return q, facts, notes


def from_params(params: dict[str, Any]) -> dict[str, Quantity]:
    out = {}
    for name, item in PARAMS.items():
        v = params.get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ParameterError(f"{name} must be a number of 0 or more, got {v!r}")
        out[item] = Quantity(item, float(v), "parameter", f"-p {name}={v:g}")
    return out


def combine(sql: dict[str, Quantity], csv_q: dict[str, Quantity], param_q: dict[str, Quantity],
            facts: dict[str, Any], autoscale: dict[str, Any], disk_gb: tuple[float, str] | None = None,
            notes: list[str] | None = None) -> Usage:
    """Parameters win over the usage CSV, which wins over SQL (the dashboard is what Supabase bills)."""
    notes = list(notes or [])
    quantities: dict[str, Quantity] = {}
    for layer in (sql, csv_q, param_q):
        for item, qty in layer.items():
            before = quantities.get(item)
            if before is not None and before.value is not None and qty.value is not None and \
                    abs(before.value - qty.value) > 1e-9:
                qty = dataclasses.replace(qty, detail=f"{qty.detail} (the {before.source} says {before.value:,.6g})")
            quantities[item] = qty
    database = quantities.get("database")
    database_gb = database.value if database else facts.get("database_gb")
    if disk_gb is not None:
        quantities["disk"] = Quantity("disk", float(disk_gb[0]), disk_gb[1], "provisioned disk as configured")
    elif "disk" not in quantities and database_gb is not None:
        disk = provisioned_disk_gb(database_gb, autoscale)
        quantities["disk"] = Quantity(
            "disk", disk, "database",
            f"estimated: {database_gb:,.2f} GB of databases need a disk of {disk:g} GB by the auto-scaling rule "
            f"(grows by {autoscale.get('grow_pct', 50):g}% at {autoscale.get('trigger_pct', 90):g}% full, from "
            f"{autoscale.get('min_gb', 8):g} GB; never shrinks by itself); WAL and system files not counted")
    return Usage(quantities, database_gb=database_gb, databases=facts.get("databases"),
                 buckets=facts.get("buckets"), notes=notes)
