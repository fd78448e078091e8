"""Run a runbook headless with papermill and write its report: HTML, executed notebook and sidecar JSON."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config import params as paramspec
from ..config.file import Config, load
from ..core.errors import OpsbookError, ParameterError, UnknownRunbook, UsageError
from ..config.paths import CALLER_CWD_ENV, runbooks_dir, writable_dir
from ..core.redact import known_secrets, scrub_files

FAIL_ON = ("warning", "critical")
# Runs in one process take turns (papermill and nbclient keep process-wide state: loggers, event loops, signal
# handlers). Run in parallel with processes: `kernels.many.run_many`, or one `opsbook run` each.
_RUN_LOCK = threading.Lock()


@dataclass
class RunResult:
    """What one run produced; `exit_code` is 0 (ran), 1 (failed while executing) or 3 (--fail-on matched)."""

    exit_code: int
    sidecar: dict[str, Any]
    html_path: Path
    notebook_path: Path
    sidecar_path: Path
    worker: dict[str, Any] | None = None  # set by kernels.many.run_many: which process ran it, its memory

    def to_json(self) -> dict[str, Any]:
        """The object `opsbook run --json` prints (DESIGN: Command line)."""
        s = self.sidecar
        return {"status": s["status"], "runbook": s["runbook"], "target": s["target"],
                "report_html": str(self.html_path), "notebook": str(self.notebook_path),
                "sidecar": str(self.sidecar_path), "findings": s["findings"], "metrics": s["metrics"],
                "exit_code": self.exit_code, "error": s["error"]}


# ---------------------------------------------------------------------------------------------- discovery
def runbook_names() -> list[str]:
    folder = runbooks_dir()
    return sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []


def runbook_path(name: str) -> Path:
    path = runbooks_dir() / f"{name}.ipynb"
    if "/" in name or os.sep in name or not path.is_file():
        raise UnknownRunbook(name, runbook_names())
    return path


def runbook_meta(name: str) -> dict[str, Any]:
    """The notebook's `metadata.opsbook`: purpose, demo_parameters."""
    return paramspec.read_notebook(runbook_path(name)).get("metadata", {}).get("opsbook", {})


def list_runbooks() -> list[tuple[str, str]]:
    """(name, one-line purpose from metadata.opsbook.purpose) for every runbook."""
    out = []
    for name in runbook_names():
        try:
            out.append((name, runbook_meta(name).get("purpose", "")))
        except OpsbookError as e:
            out.append((name, f"(unreadable: {e})"))
    return out


def describe(name: str) -> list[paramspec.Param]:
    return paramspec.describe(runbook_path(name))


# ---------------------------------------------------------------------------------------------- running
def run_runbook(name: str, target: str = "demo", params: dict[str, Any] | None = None, *,
                config: Config | None = None, output_dir: Path | None = None, with_code: bool = False,
                self_contained: bool = False, fail_on: str | None = None, pool=None,
                refresh_index: bool = True, environ: dict[str, str] | None = None) -> RunResult:
    """Execute one runbook against one target and write its three report files; refresh the index.

    The run takes a fresh kernel from `pool` (a `kernels.KernelPool`), or starts its own. SIGINT/SIGTERM during
    the run interrupt the kernel; the report is still written (status failed) and the exit code is 130/143.
    `environ` replaces the kernel's environment for the run (the service runs a caller's request with the
    caller's environment); by default the kernel keeps the one it started with.

    Bad input (unknown runbook, target or parameter, wrong type, bad --fail-on) raises a UsageError before
    anything runs. A runbook that fails while executing still gets its report, with status "failed".
    """
    config = config or load()
    path, values, tgt, injected = check_run(name, target, params, config=config, fail_on=fail_on)
    from ..report import record as runrecord  # noqa: PLC0415

    # what started it: the launcher says so (schedule, fleet); else a person, here or through the service
    started_by = runrecord.started_by(environ, default="cli" if environ is None else "service")

    root = writable_dir(output_dir or config.reports_dir, "--output-dir" if output_dir else "the reports folder")
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    stem = reserve_stem(root, name, target, started)
    nb_path, html_path, json_path = (stem.with_name(stem.name + s) for s in (".ipynb", ".html", ".json"))
    t0 = time.perf_counter()
    own_pool = pool is None
    if own_pool:
        from .kernels import KernelPool  # noqa: PLC0415

        pool = KernelPool(size=1, refill=False)  # the kernel warms up while this process imports papermill
    try:
        with tempfile.TemporaryDirectory(prefix="opsbook-run-") as tmp:
            record_file = Path(tmp) / "record.jsonl"
            kernel_env = {"OPSBOOK_RUN_RECORD": str(record_file), "OPSBOOK_REPORT_STEM": str(stem),
                          "OPSBOOK_CONFIG": str(_config_file(config, Path(tmp))),
                          # the kernel runs in runbooks/; relative paths in parameters mean the caller's folder
                          CALLER_CWD_ENV: os.getcwd()}
            with _RUN_LOCK, _quiet_papermill():
                nb, error, stopped_by = _execute(path, injected, pool, kernel_env, environ)
            record = runrecord.read(record_file)
    finally:
        if own_pool:
            pool.close()
    sidecar = {"runbook": name, "target": target, "status": "failed" if error else "ok",
               "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "started_by": started_by,
               "duration_s": round(time.perf_counter() - t0, 2),
               "server_version_num": record["meta"].get("server_version_num"),
               "parameters": values, "findings": record["findings"], "metrics": record["metrics"],
               "error": _error_line(error)}
    json_path.write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    _write_notebook(nb, nb_path)
    page = _render(nb, html_path, sidecar, record, tgt.display(), error, root, with_code, self_contained)
    _write_atomic(html_path, page)
    sidecar = json.loads(scrub_files(known_secrets(config), json_path, nb_path, html_path)[json_path])
    if refresh_index:
        from ..report.index import write_index  # noqa: PLC0415

        write_index(root)
    code = 128 + SIGNAL_NUMBERS[stopped_by] if stopped_by else _exit_code(sidecar, fail_on)
    return RunResult(code, sidecar, html_path, nb_path, json_path)


def check_run(name: str, target: str = "demo", params: dict[str, Any] | None = None, *, config: Config,
              fail_on: str | None = None):
    """Validate one run before anything starts: (notebook path, parameter values, Target, injected parameters).

    Raises a UsageError (exit 2) for an unknown runbook, target or parameter, a wrong type, a bad --fail-on."""
    path = runbook_path(name)
    tgt = config.target(target)
    values = _validated_params(path, params or {}, {"config": config, "target": tgt})
    paramspec.preflight(paramspec.read_notebook(path), values, {"config": config, "target": tgt})
    if not tgt.embedded:
        if not tgt.embedded:
            tgt.conninfo()  # an unset dsn_env variable is a usage error, not a failed run
    _validate_config_thresholds(config, tgt)
    if fail_on is not None and fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    declared = {p.name for p in paramspec.describe(path)}
    injected = {**({"target": target} if "target" in declared else {}), **values}
    return path, values, tgt, injected


def run_all(target: str = "demo", *, config: Config | None = None, output_dir: Path | None = None,
            progress: Callable[[str], None] = lambda line: None,
            params_for: Callable[[str], dict[str, Any]] = lambda name: {},
            around: Callable[[str], contextlib.AbstractContextManager] = lambda name: contextlib.nullcontext(),
            **kw: Any) -> list[RunResult]:
    """Every runbook against one target, in name order (those whose metadata says `after_others`, such as
    monthly-health, which reads the others' sidecars, last), one line of progress per runbook.

    `params_for(name)` gives a runbook's parameters; `around(name)` a context its run happens inside."""
    config = config or load()
    names = sorted(runbook_names(), key=lambda n: bool(runbook_meta(n).get("after_others")))
    results = []
    for i, name in enumerate(names, 1):
        params = params_for(name)
        shown = " ".join(f"{k}={json.dumps(v)}" for k, v in params.items())
        progress(f"[{i}/{len(names)}] {name} on {target}{' with ' + shown if shown else ''} ...")
        with around(name):
            r = run_runbook(name, target, params, config=config, output_dir=output_dir, **kw)
        c = _counts(r.sidecar["findings"])
        tally = ", ".join(f"{n} {s}" for s, n in c.items() if n) or "no findings"
        progress(f"[{i}/{len(names)}] {name}: {r.sidecar['status']} in {r.sidecar['duration_s']:.1f} s "
                 f"({tally}) -> {r.html_path}")
        results.append(r)
    return results


# ---------------------------------------------------------------------------------------------- helpers
SIGNAL_NUMBERS = {"SIGINT": 2, "SIGTERM": 15}  # exit code 128 + number, as a shell reports a signalled process


def reserve_stem(root: Path, runbook: str, target: str, started: dt.datetime) -> Path:
    """reports/YYYY-MM-DD/<runbook>--<target>--HHMMSSZ, with -2, -3... when that second is already taken."""
    folder = root / started.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{runbook}--{target}--{started.strftime('%H%M%S')}Z"
    for n in range(1, 1000):
        stem = folder / (base if n == 1 else f"{base}-{n}")
        try:
            os.close(os.open(stem.with_name(stem.name + ".ipynb"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return stem
        except FileExistsError:
            continue
    raise OpsbookError(f"too many runs of {runbook} on {target} in one second in {folder}")  # pragma: no cover


def _validated_params(path: Path, raw: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    if "target" in raw:
        raise ParameterError("the target is not a parameter here: use --target NAME (or target=...)")
    values = paramspec.coerce(paramspec.describe(path), raw, context)
    overrides = values.get("thresholds")
    if overrides:
        from .. import checks  # noqa: PLC0415

        for check_id, layer in overrides.items():
            if not isinstance(layer, dict):
                raise ParameterError(f"thresholds[{check_id!r}] must be an object of threshold values, "
                                     f'e.g. {{"{check_id}": {{"warning": 60}}}}')
            checks.get(check_id).resolve_thresholds(layer)
    return values


def _validate_config_thresholds(config: Config, target) -> None:
    """Threshold tables in opsbook.toml name real checks and real thresholds of the right type (exit 2 if not)."""
    from .. import checks  # noqa: PLC0415

    known = checks.load_all()
    for where, layers in (("[thresholds]", config.thresholds), (f"[targets.{target.name}.thresholds]",
                                                                target.thresholds)):
        for check_id, layer in layers.items():
            if check_id not in known:
                raise ParameterError(f"{where} names unknown check {check_id!r}; `opsbook checks` lists them")
            known[check_id].resolve_thresholds(layer)


def _execute(path: Path, parameters: dict[str, Any], pool, kernel_env: dict[str, str],
             environ: dict[str, str] | None = None):
    """Run the notebook on a kernel from `pool`; returns (executed notebook, error dict or None, signal name).

    Never raises for a failing cell. The kernel's own stdout/stderr go to its log file (the CLI output stays clean,
    `--json` stays parseable); a dead kernel's last lines are kept in the error.
    """
    from .kernels.execute import run_notebook  # noqa: PLC0415

    kernel = pool.take()
    try:
        env = kernel_env if environ is None else {**environ, **kernel_env}
        nb, error, stopped_by = run_notebook(path, parameters, kernel, env=env, cwd=path.parent,
                                             replace_env=environ is not None)
    finally:
        pool.retire(kernel)
    if error is None:
        return nb, None, None
    index, cell = _failed_cell(nb)
    error["cell_index"] = index
    if cell is not None:
        error["section"] = _section_of(nb, cell)
        error["source"] = error.get("source") or cell.source
    if error["ename"] == "DeadKernelError":
        error["evalue"] = "the kernel died while running this cell (out of memory, or a crash in native code)"
    error["where"] = where_failed(error)
    return nb, error, stopped_by


def _write_notebook(nb, path: Path) -> None:
    """The executed notebook, written once, after the run (papermill's per-cell saves are off)."""
    import nbformat  # noqa: PLC0415

    _write_atomic(path, nbformat.writes(nb))


def _write_atomic(path: Path, text: str) -> None:
    from ..config.paths import atomic_write_text  # noqa: PLC0415 - no .tmp left behind on a full disk

    atomic_write_text(path, text, tmp_name=f".{path.name}.tmp")


def _failed_cell(nb):
    """(number among the runbook's own code cells, cell) of the cell that failed, or that was running when the
    kernel died; papermill's injected-parameters cell is not counted, so the number matches the runbook file."""
    code = [c for c in nb.cells
            if c.cell_type == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    started = (None, None)
    for i, cell in enumerate(code, 1):
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("exception") or any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return i, cell
        if meta.get("start_time"):
            started = (i, cell)
    return started


def _section_of(nb, cell) -> str | None:
    """The last markdown heading before `cell`: where in the runbook's prose it stopped."""
    heading = None
    for c in nb.cells:
        if c is cell:
            return heading
        if c.cell_type == "markdown":
            for line in c.source.splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
    return heading


def _error_line(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    return f"{error['ename']}: {error['evalue']} ({error['where']})"


def where_failed(error: dict[str, Any]) -> str:
    """`code cell 4, section 'Locks'`: where the run stopped, counted as in the runbook file."""
    where = f"code cell {error['cell_index']}" if error.get("cell_index") else "before any cell ran"
    return where + (f", section {error['section']!r}" if error.get("section") else "")


def _render(nb, html_path, sidecar, record, target_display, error, root, with_code, self_contained) -> str:
    from ..report.html import Header, render  # noqa: PLC0415

    header = Header(runbook=sidecar["runbook"], target=sidecar["target"], target_display=target_display,
                    status=sidecar["status"], started_at=sidecar["started_at"], duration_s=sidecar["duration_s"],
                    parameters=sidecar["parameters"], counts=_counts(sidecar["findings"]),
                    server_version=record["meta"].get("server_version"), role=record["meta"].get("role"),
                    superuser=bool(record["meta"].get("superuser")), in_recovery=record["meta"].get("in_recovery"),
                    primary=record["meta"].get("primary"), error=error,
                    findings=sidecar["findings"], title=record["meta"].get("title"))
    return render(nb, html_path, header, reports_root=root, with_code=with_code, self_contained=self_contained)


def _counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    out = {"critical": 0, "warning": 0, "info": 0, "ok": 0}
    for f in findings:
        out[f.get("severity", "info")] = out.get(f.get("severity", "info"), 0) + 1
    return out


def _exit_code(sidecar: dict[str, Any], fail_on: str | None) -> int:
    if sidecar["status"] != "ok":
        return 1
    if fail_on:
        from ..core.findings import Severity  # noqa: PLC0415

        bar = Severity.parse(fail_on).rank
        if any(Severity.parse(f["severity"]).rank >= bar for f in sidecar["findings"]):
            return 3
    return 0


def _config_file(config: Config, tmp: Path) -> Path:
    """The config the kernel loads: the file itself, or `raw` written as TOML (reports dir made absolute)."""
    if config.path is not None and Path(config.path).is_file():
        return Path(config.path).absolute()
    from tomli_w import dumps  # noqa: PLC0415

    path = tmp / "opsbook.toml"
    path.write_text(dumps(config.portable_raw()))
    return path


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    """papermill logs input/output paths and unknown-parameter warnings; the CLI output stays ours."""
    loggers = [logging.getLogger(n) for n in ("papermill", "traitlets", "nbclient")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # a failure is reported in the report and the exit code, not as log noise
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
