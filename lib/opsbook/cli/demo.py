"""`make demo`: the whole product on the embedded demo database, every runbook run into the reports folder."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config.file import DEMO_DATABASE, DEMO_TARGET, Config, load
from ..core.errors import UsageError
from ..database.embedded import default_server
from ..history import open_store
from ..history.replay import replay_history
from ..recovery import demo_rows  # rows deleted after the dump, for table-recovery
from ..report.index import index_path
from ..run.runner import RunResult, run_all, runbook_meta
from ..database.demo import LIVE_THRESHOLDS
from ..database.demo.build import ensure_demo_database
from ..database.demo.live import live_faults

LIVE_INCIDENT_AGE_S = 5  # the demo's live faults age this long before incident-triage looks at them


def run_demo(*, config: Config | None = None, output_dir: Path | None = None,
         progress: Callable[[str], None] = lambda line: None) -> tuple[Path, list[RunResult]]:
    """The whole product on the embedded demo database: server, demo data and its history, every runbook, the
    index. incident-triage runs while live sessions make a real incident (a blocking tree, an idle transaction,
    a long query), with thresholds lowered to the faults' two-minute life."""
    config = config or load()
    if not config.target(DEMO_TARGET).embedded:
        raise UsageError("opsbook demo builds and replays its database on the embedded server, but [targets.demo] "
                         "in the configuration points elsewhere; rename that target")
    server = default_server()
    progress("starting the embedded PostgreSQL server ...")
    status = server.start()
    progress(f"embedded PostgreSQL {status['version']} running on port {status['port']} ({status['data_dir']})")
    stats = ensure_demo_database(server=server, progress=progress)
    store = open_store(config, create=False)
    # every replay really inserts rows: replay once per demo build, not on every `opsbook demo`
    if stats.get("built") or store is None or not store.has_history(DEMO_TARGET):
        progress("replaying 60 days of growth with a simulated clock, one snapshot per day ...")
        replay_history(server, days=60, progress=progress, config=config)

    def params_for(name: str) -> dict[str, Any]:
        params = dict(runbook_meta(name).get("demo_parameters", {}))
        if name == "incident-triage":
            params["thresholds"] = {**params.get("thresholds", {}), **LIVE_THRESHOLDS}
        return params

    @contextlib.contextmanager
    def live_incident() -> Iterator[None]:
        progress("opening live sessions for the incident: an idle transaction blocking two others, a long query")
        with live_faults(server.conninfo(dbname=DEMO_DATABASE)):
            time.sleep(LIVE_INCIDENT_AGE_S)  # older than LIVE_THRESHOLDS, so they are findings, not near misses
            yield

    def around(name: str) -> contextlib.AbstractContextManager:
        return live_incident() if name == "incident-triage" else \
            demo_rows.around(name, server.conninfo(dbname=DEMO_DATABASE), progress)

    results = run_all(DEMO_TARGET, config=config, output_dir=output_dir, progress=progress,
                      params_for=params_for, around=around)
    return index_path(Path(output_dir or config.reports_dir).absolute()), results
