"""The same database on AWS RDS for PostgreSQL, from THIRD-PARTY prices: a comparison, not a quote."""
from __future__ import annotations

from .bill import Bill, money, num
from ..config.pricing import PriceList
from .usage import Usage

CAVEAT = ("AWS prices here come from third-party tables, not from AWS, and cover only the database server and its "
          "disk: RDS has no Auth, Storage API, Edge Functions, Realtime or dashboard, which the Supabase plan fee "
          "includes; AWS data transfer out is not priced.")


def instance_for(prices: PriceList, ram_gb: float) -> tuple[str, dict] | None:
    """The cheapest listed RDS instance with at least `ram_gb` of memory, or None."""
    fitting = [(name, i) for name, i in prices.get("rds.instances", {}).items() if float(i.get("ram_gb", 0)) >= ram_gb]
    return min(fitting, key=lambda kv: kv[1]["usd_hour"]) if fitting else None


def compare(prices: PriceList, bill: Bill, usage: Usage):
    """Rows: what, Supabase USD/month, RDS USD/month, note; attrs carry the caveat and the label."""
    import pandas as pd  # noqa: PLC0415

    hours = prices.hours_per_month
    size = prices.size(bill.settings.compute)
    ram = float(size.get("ram_gb", 0))
    disk_gb = usage.get("disk")
    rows = []
    supa_compute = money(bill.amount("compute") + bill.amount("compute_credits"))
    picked = instance_for(prices, ram)
    if picked:
        name, inst = picked
        rds_compute = money(hours, inst["usd_hour"])
        cite = prices.cite(f'rds.instances."{name}".usd_hour')
        note = (f"{name} ({num(inst['ram_gb'])} GB RAM) at {inst['usd_hour']:g} USD/hour ({cite}); "
                "Supabase after compute credits")
    else:
        rds_compute, note = None, f"no third-party RDS price in the list for {num(ram)} GB of RAM"
    rows.append({"what": f"Database server ({size.get('label', bill.settings.compute)}, {num(ram)} GB RAM)",
                 "supabase_usd": supa_compute, "rds_usd": rds_compute, "note": note})
    gp3 = float(prices.get("rds.storage.gp3_usd_gb_month"))
    rows.append({"what": f"Disk ({num(disk_gb, 'GB')} gp3)", "supabase_usd": bill.amount("disk"),
                 "rds_usd": money(disk_gb, gp3),
                 "note": f"RDS gp3 at {gp3:g} USD/GB-month from the first GB ({prices.cite('rds.storage.gp3_usd_gb_month')}); "
                         "Supabase includes 8 GB"})
    rest = money(bill.total_usd - supa_compute - bill.amount("disk"))
    rows.append({"what": "Everything else on the Supabase bill (plan, Auth, Storage, API, overages, add-ons)",
                 "supabase_usd": rest, "rds_usd": None, "note": "no RDS equivalent priced"})
    df = pd.DataFrame(rows)
    df.attrs.update(label=prices.get("rds.label", "AWS RDS"), caveat=CAVEAT, third_party=True)
    return df
