"""Cost: usage over quota, a better-fitting plan or compute size, and the levers worth money."""
from __future__ import annotations

from ..core.findings import Finding, Severity
from .registry import Check, CheckContext, Threshold, register

RUNBOOKS = ("cost-analysis",)


def analysis_for(ctx: CheckContext):
    """The cost analysis of this session (computed once; the runbook's cells share it)."""
    from ..cost.analysis import for_session  # noqa: PLC0415

    return for_session(ctx.db, ctx.target, ctx.config, ctx.params)


def _unpriced(a, columns: list[str]):
    """The empty frame of a check on a target with no bill: attrs say why and what was measured."""
    import pandas as pd  # noqa: PLC0415

    from ..cost.unpriced import HOW_TO_PRICE, summary  # noqa: PLC0415

    df = pd.DataFrame(columns=columns)
    df.attrs.update(unpriced=a.unpriced, measured=summary(a.usage, a.peak, a.max_connections), how=HOW_TO_PRICE)
    return df


def judge_unpriced(check_id: str, df, *, first: bool = False) -> list[Finding] | None:
    """None when the target was priced; else one info finding (`first`: with the usage measured) and no bill."""
    why = df.attrs.get("unpriced")
    if not why:
        return None
    return [Finding(check_id, Severity.INFO, why, detail=df.attrs.get("measured", "") if first else
                    "See cost.over_quota for the usage measured.", skipped=why, remediation=df.attrs.get("how", ""))]


def _n(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.2f}"


# ------------------------------------------------------------------ cost.over_quota
def over_quota_data(ctx: CheckContext):
    a = analysis_for(ctx)
    if not a:
        return _unpriced(a, ["key", "item", "quantity", "unit", "included", "over", "amount_usd", "capped",
                             "usage_source", "note"])
    df = a.bill.to_frame()
    df = df[df["kind"] == "usage"][["key", "item", "quantity", "unit", "included", "over", "amount_usd", "capped",
                                    "usage_source", "note"]].reset_index(drop=True)
    plan = a.prices.plan(a.settings.plan)
    df.attrs.update(plan=plan.get("label", a.settings.plan), spend_cap=a.settings.spend_cap,
                    pays_overage=bool(plan.get("pays_overage")))
    return df


def judge_over_quota(df, *, critical: float = 100) -> list[Finding]:
    unpriced = judge_unpriced("cost.over_quota", df, first=True)
    if unpriced is not None:
        return unpriced
    plan, cap, pays = df.attrs.get("plan", "?"), df.attrs.get("spend_cap", False), df.attrs.get("pays_overage", True)
    out = []
    for r in df[df["over"].fillna(0) > 0].itertuples():
        restricted = not pays or (cap and r.capped)
        if restricted:
            sev = Severity.CRITICAL if r.key == "disk" and not pays else Severity.WARNING
            what = ("not billed: the spend cap restricts the project instead" if pays else
                    f"the {plan} plan does not bill overage; the project is restricted"
                    + (" (the database turns read-only)" if r.key == "disk" else ""))
            fix = ("Turn the spend cap off to pay for the overage instead of being restricted, or reduce the usage "
                   "(see the levers below)." if pays else "Reduce the usage or upgrade to Pro.")
            billed = "not billed under the spend cap"
        else:
            sev = Severity.CRITICAL if r.amount_usd >= critical else Severity.WARNING
            what = f"{r.amount_usd:,.2f} USD of overage this month"
            fix = "Reduce the usage (see the levers below) or budget for it; a plan change does not raise quotas " \
                  "between Pro and Team."
            billed = "billed"
        if r.included is None or r.included < 0:
            title = f"{r.item}: {_n(r.quantity)} {r.unit} used, not available on the {plan} plan"
        else:
            money = f"{r.amount_usd:,.2f} USD, {billed}" if pays else f"restricted on {plan}"
            title = f"{r.item}: {_n(r.quantity)} {r.unit}, {_n(r.over)} over the {_n(r.included)} included ({money})"
        out.append(Finding("cost.over_quota", sev, title, detail=f"{what}. {r.note} Source: {r.usage_source}.",
                           objects=[r.key], value=r.amount_usd, threshold=critical, remediation=fix))
    unmeasured = df[df["quantity"].isna()]
    if len(unmeasured):
        out.append(Finding("cost.over_quota", Severity.INFO,
                           f"{len(unmeasured)} usage item(s) not measured, counted as 0: "
                           f"{', '.join(unmeasured['item'].str.lower())}",
                           detail="SQL cannot see egress, Edge Function invocations, Realtime or image "
                                  "transformations.", objects=list(unmeasured["key"]),
                           remediation="Pass them as parameters (-p egress_gb=...) or export the dashboard's usage "
                                       "as CSV and pass -p usage_csv=PATH."))
    if not any(f.severity.rank >= 2 for f in out):
        measured = df[df["quantity"].notna()]
        out.insert(0, Finding("cost.over_quota", Severity.OK,
                              f"all {len(measured)} measured usage items within the {plan} quotas",
                              value=0.0, threshold=critical))
    return out


OVER_QUOTA = register(Check(
    id="cost.over_quota",
    description="Usage items (egress, disk, file storage, monthly active users, invocations, Realtime, image "
                "transformations) above the plan's quota, with their overage cost or, under the spend cap or on "
                "Free, the restriction instead.",
    data=over_quota_data,
    judge=judge_over_quota,
    thresholds=(Threshold("critical", 100, "USD/month of overage on one item",
                          "opsbook default: an overage this large calls for a plan, architecture or budget decision"),),
    queries=("cost/database_sizes", "cost/storage_buckets", "auth/sources", "auth/mau", "auth/mau_audit"),
    runbooks=RUNBOOKS,
))


# ------------------------------------------------------------------ cost.plan_fit
def plan_fit_data(ctx: CheckContext):
    import pandas as pd  # noqa: PLC0415

    a = analysis_for(ctx)
    if not a:
        return _unpriced(a, ["key", "item", "used", "quota", "unit", "pct_of_quota", "days_until_quota", "basis"])
    plan = a.prices.plan(a.settings.plan)
    trigger = float(a.prices.get("disk.autoscale.trigger_pct", 90)) / 100
    fits = a.trend.forecasts if a.trend is not None else {}
    rows = []
    for line in a.bill.lines:
        if line.kind != "usage" or line.quantity is None or not line.included or line.included <= 0:
            continue
        used, limit, basis = line.quantity, line.included, ""
        if line.key == "disk" and plan.get("pays_overage"):  # billing starts when auto-scaling does
            used, limit = a.usage.database_gb or 0.0, line.included * trigger
            basis = f"database size against {trigger:.0%} of the included disk, where auto-scaling starts"
        days = None
        series = {"disk": "database", "storage": "storage", "mau": "mau"}.get(line.key)
        if series in fits and fits[series].ok:
            days = fits[series].days_until(limit).days
        rows.append({"key": line.key, "item": line.item, "used": used, "quota": limit, "unit": line.unit,
                     "pct_of_quota": round(100 * used / limit, 1), "days_until_quota": days, "basis": basis})
    df = pd.DataFrame(rows, columns=["key", "item", "used", "quota", "unit", "pct_of_quota", "days_until_quota",
                                     "basis"])
    df.attrs.update(plan=plan.get("label", a.settings.plan), total_usd=a.bill.total_usd,
                    pays_overage=bool(plan.get("pays_overage")), over=[x.item for x in a.bill.over_quota()],
                    alternatives=[{"plan": b.settings.plan, "label": a.prices.plan(b.settings.plan).get("label"),
                                   "total_usd": b.total_usd, "delta_usd": round(b.total_usd - a.bill.total_usd, 2),
                                   "fits": not (b.over_quota() and not a.prices.plan(b.settings.plan).get(
                                       "pays_overage")),
                                   "for_production": a.prices.plan(b.settings.plan).get("for_production", True)}
                                  for b in a.alternatives])
    return df


def judge_plan_fit(df, *, warning: float = 80, min_usd: float = 10) -> list[Finding]:
    unpriced = judge_unpriced("cost.plan_fit", df)
    if unpriced is not None:
        return unpriced
    plan, out = df.attrs.get("plan", "?"), []
    for r in df[(df["pct_of_quota"] >= warning) & (df["pct_of_quota"] < 100)].itertuples():
        when = f"; at the current growth it is crossed in about {r.days_until_quota:,.0f} days" \
            if r.days_until_quota is not None and r.days_until_quota == r.days_until_quota else ""
        out.append(Finding("cost.plan_fit", Severity.WARNING,
                           f"{r.item} at {r.pct_of_quota:.0f}% of the {plan} quota ({_n(r.used)} of {_n(r.quota)} "
                           f"{r.unit})", detail=(r.basis + ". " if r.basis else "") + f"Past the quota it is billed "
                           f"as overage (or restricted under the spend cap){when}.", objects=[r.key],
                           value=r.pct_of_quota, threshold=warning,
                           remediation="Plan for the overage in the budget, or act on the levers below before it "
                                       "is crossed."))
    for alt in df.attrs.get("alternatives", []):
        saving = -alt["delta_usd"]
        if saving >= min_usd and alt["fits"]:
            sev = Severity.WARNING if alt["for_production"] else Severity.INFO
            why = "" if alt["for_production"] else (" It is not meant for production (paused after a week of "
                                                    "inactivity, no add-ons), so this is for information only.")
            out.append(Finding("cost.plan_fit", sev, f"the {alt['label']} plan would cost {saving:,.2f} USD a month "
                               f"less for this usage", detail=f"{alt['label']}: {alt['total_usd']:,.2f} USD against "
                               f"{df.attrs.get('total_usd', 0):,.2f} USD on {plan}.{why}", objects=[alt["plan"]],
                               value=saving, threshold=min_usd,
                               remediation=f"Check that nothing needs {plan}'s extra features, then change the "
                                           "plan in the dashboard (organization billing)."))
        if not df.attrs.get("pays_overage", True) and df.attrs.get("over") and alt["fits"] and alt["for_production"]:
            out.append(Finding("cost.plan_fit", Severity.WARNING, f"usage exceeds the {plan} plan; {alt['label']} "
                               f"would hold it for {alt['total_usd']:,.2f} USD a month",
                               detail=f"Over the {plan} quotas: {', '.join(df.attrs['over'])}.",
                               objects=[alt["plan"]], value=alt["total_usd"],
                               remediation=f"Upgrade to {alt['label']}, or reduce the usage."))
            break
    if not out:
        under = df[df["pct_of_quota"] < 100].sort_values("pct_of_quota", ascending=False).head(1)
        most = f"; highest: {under['item'].iloc[0]} at {under['pct_of_quota'].iloc[0]:.0f}%" if len(under) else ""
        over = df.attrs.get("over") or []
        past = f" (over quota already: {', '.join(over).lower()}; see cost.over_quota)" if over else ""
        out.append(Finding("cost.plan_fit", Severity.OK, f"no cheaper plan fits; no quota between {warning:g}% and "
                           f"100%{most}{past}", threshold=warning))
    return out


PLAN_FIT = register(Check(
    id="cost.plan_fit",
    description="Whether another plan would cost less for the same usage, and which quotas are close to being "
                "crossed (with the days left when the history has a growth trend).",
    data=plan_fit_data,
    judge=judge_plan_fit,
    thresholds=(Threshold("warning", 80, "% of a plan quota", "source guides 001/002: alert at 80% of a limit"),
                Threshold("min_usd", 10, "USD/month", "opsbook default: smaller differences are not worth a plan "
                          "change")),
    runbooks=RUNBOOKS,
))


# ------------------------------------------------------------------ cost.compute_fit
def compute_fit_data(ctx: CheckContext):
    a = analysis_for(ctx)
    return a.compute if a else _unpriced(a, ["label", "ram_gb", "max_connections", "usd_month", "peak_pct",
                                             "current", "recommended"])


def judge_compute_fit(df, *, warning: float = 80, downsize: float = 40) -> list[Finding]:
    from ..cost.whatif import recommend  # noqa: PLC0415

    unpriced = judge_unpriced("cost.compute_fit", df)
    if unpriced is not None:
        return unpriced
    peak = df.attrs.get("peak")
    if peak is None or not df["current"].any():
        return [Finding("cost.compute_fit", Severity.INFO, "compute fit not judged: no connection count",
                        skipped="no connection measurement")]
    df = recommend(df, warning=warning, downsize=downsize)
    cur, rec = df[df["current"]].iloc[0], df[df["recommended"]].iloc[0]
    credits = float(df.attrs.get("credits", 0))
    delta = max(rec["usd_month"] - credits, 0) - max(cur["usd_month"] - credits, 0)
    source = df.attrs.get("peak_source", "")
    basis = (f"Peak {peak:,.0f} connections ({source}) against {cur['label']}'s {cur['max_connections']:,.0f} "
             f"direct connections ({cur['peak_pct']:.0f}%); database {df.attrs.get('database_gb') or 0:,.2f} GB, "
             f"{cur['label']} has {cur['ram_gb']:g} GB RAM.")
    if rec["size"] == cur["size"]:
        return [Finding("cost.compute_fit", Severity.OK, f"{cur['label']} fits the measured load "
                        f"({cur['peak_pct']:.0f}% of its connections at the peak)", detail=basis,
                        value=cur["peak_pct"], threshold=warning)]
    bigger = rec.name > cur.name
    if bigger:
        sev, title = Severity.WARNING, (f"{cur['label']} is too small: the peak uses {cur['peak_pct']:.0f}% of its "
                                        f"connections; {rec['label']} would hold it ({delta:+,.2f} USD a month)")
        fix = (f"Move the pooled traffic to Supavisor (transaction mode) first; if the load is real, resize to "
               f"{rec['label']} in the dashboard (Settings > Compute and Disk; a short restart).")
    else:
        sev = Severity.WARNING if df.attrs.get("history") else Severity.INFO
        title = (f"{cur['label']} is larger than the measured load needs: {rec['label']} would hold it for "
                 f"{-delta:,.2f} USD a month less")
        fix = (f"Resize to {rec['label']} in a quiet hour (Settings > Compute and Disk; a short restart), then "
               "watch connections and cache hit ratio for a week.")
        if not df.attrs.get("history"):
            fix = "Take snapshots for a month (`opsbook snapshot` on a schedule) to confirm the peak; then " + \
                  fix[0].lower() + fix[1:]
    return [Finding("cost.compute_fit", sev, title, detail=basis, objects=[cur["size"], rec["size"]],
                    value=cur["peak_pct"], threshold=warning if bigger else downsize, remediation=fix)]


COMPUTE_FIT = register(Check(
    id="cost.compute_fit",
    description="Whether the compute size matches the measured load: the connection peak (from the history, else "
                "one sample now) against each size's connection limit, and the database size against its RAM "
                "(a smaller size must keep at least a quarter of the database in memory).",
    data=compute_fit_data,
    judge=judge_compute_fit,
    thresholds=(Threshold("warning", 80, "% of the size's max connections at the peak",
                          "source guides 001/002: alert at 80% of the connection limit"),
                Threshold("downsize", 40, "% of a smaller size's max connections at the peak",
                          "opsbook default: a smaller size must leave room for the next growth spurt")),
    queries=("connections/limits",),
    runbooks=RUNBOOKS,
))


# ------------------------------------------------------------------ cost.savings
def savings_data(ctx: CheckContext):
    import pandas as pd  # noqa: PLC0415

    a = analysis_for(ctx)
    if not a:
        return _unpriced(a, ["lever", "title", "delta_usd", "savings_usd", "new_total_usd", "fits", "tradeoff",
                             "detail", "caveat"])
    rows = [{"lever": w.lever, "title": w.title, "delta_usd": w.delta_usd, "savings_usd": w.savings_usd,
             "new_total_usd": w.new_total_usd, "fits": w.fits, "tradeoff": w.tradeoff, "detail": w.detail,
             "caveat": w.caveat} for w in a.whatifs]
    return pd.DataFrame(rows, columns=["lever", "title", "delta_usd", "savings_usd", "new_total_usd", "fits",
                                       "tradeoff", "detail", "caveat"])


def judge_savings(df, *, min_usd: float = 10, warning: float = 50) -> list[Finding]:
    unpriced = judge_unpriced("cost.savings", df)
    if unpriced is not None:
        return unpriced
    out = []
    for r in df[(df["savings_usd"] >= min_usd) & df["fits"]].itertuples():
        sev = Severity.WARNING if r.savings_usd >= warning and not r.tradeoff else Severity.INFO
        out.append(Finding("cost.savings", sev, f"{r.title}: saves {r.savings_usd:,.2f} USD a month",
                           detail=r.detail, objects=[r.lever], value=r.savings_usd, threshold=min_usd,
                           remediation=r.caveat))
    if not out:
        best = df[df["fits"]].sort_values("savings_usd", ascending=False).head(1)
        top = (f"; the best lever saves {best['savings_usd'].iloc[0]:,.2f} USD ({best['title'].iloc[0]})"
               if len(best) and best["savings_usd"].iloc[0] > 0 else "")
        out.append(Finding("cost.savings", Severity.OK, f"no lever saves {min_usd:g} USD a month or more{top}",
                           threshold=min_usd))
    return out


SAVINGS = register(Check(
    id="cost.savings",
    description="What-if levers worth at least min_usd a month: archiving old rows, dropping unused indexes, "
                "compute size, plan, PITR retention; warning when a lever without a trade-off saves `warning` USD.",
    data=savings_data,
    judge=judge_savings,
    thresholds=(Threshold("min_usd", 10, "USD/month", "opsbook default: below this a change is not worth an "
                          "engineer's hour"),
                Threshold("warning", 50, "USD/month", "opsbook default: a saving with no trade-off this large "
                          "should be acted on")),
    queries=("cost/unused_indexes", "cost/timestamp_columns", "cost/sample_older"),
    runbooks=RUNBOOKS,
))

