"""From one measured restore to a predicted restore time at another size: fixed work plus work that scales."""
from __future__ import annotations

from dataclasses import dataclass

from .restore import SCALING_KINDS, RestoreResult

GB = 1024 ** 3
REFERENCE_SIZES = {"1 GB": GB, "10 GB": 10 * GB, "100 GB": 100 * GB}


@dataclass
class RestoreModel:
    """predicted_s(size) = fixed_s + scaling_s * size / restored_bytes.

    fixed_s is the per-object work (creating schemas, tables, functions, policies, starting the client); it does
    not grow with data. scaling_s is copying rows, building indexes and validating foreign keys, taken as
    linear in bytes: index builds are n log n, so for a database 100x larger this is somewhat optimistic.
    """

    measured_s: float
    scaling_s: float
    restored_bytes: int

    @property
    def fixed_s(self) -> float:
        return max(self.measured_s - self.scaling_s, 0.0)

    def predict_s(self, size_bytes: float) -> float:
        if self.restored_bytes <= 0:
            return self.measured_s
        return self.fixed_s + self.scaling_s * float(size_bytes) / self.restored_bytes


def fit(result: RestoreResult, restored_bytes: int) -> RestoreModel:
    ev = result.events_frame()
    scaling = ev[ev["kind"].isin(SCALING_KINDS)] if len(ev) else ev
    return RestoreModel(result.duration_s, min(_covered_s(scaling), result.duration_s), int(restored_bytes))


def _covered_s(events) -> float:
    """Wall-clock seconds covered by the events: with parallel jobs they overlap, and overlap counts once."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(zip(events["start_s"], events["end_s"])):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def predictions(model: RestoreModel, live_bytes: int | None, rto_minutes: float):
    """This restore, the live database's size, and reference sizes, with whether each fits the RTO."""
    import pandas as pd  # noqa: PLC0415

    rows = [("this restore (measured)", model.restored_bytes, model.measured_s)]
    if live_bytes:
        rows.append(("live database", int(live_bytes), model.predict_s(live_bytes)))
    rows += [(label, size, model.predict_s(size)) for label, size in REFERENCE_SIZES.items()]
    df = pd.DataFrame(rows, columns=["size", "size_bytes", "predicted_s"])
    df["within_rto"] = df["predicted_s"] <= rto_minutes * 60
    return df
