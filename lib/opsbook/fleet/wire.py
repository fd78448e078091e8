"""The fleet's wire: which Dask scheduler addresses a fleet may use, and the TLS `Security` built from [fleet].

Whoever reaches a Dask scheduler runs code as its workers, and everything a task takes or returns crosses the
wire: so a scheduler is `tls://`, with certificates signed by the cluster's CA (Dask checks both ends), unless the
user says `--insecure` for a plain `tcp://` one (docs/fleet-security.md).
"""
from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from ..core.errors import UsageError

TLS_KEYS = ("tls_ca_file", "tls_cert", "tls_key")
INSECURE_NOTE = ("INSECURE: plain tcp:// without TLS: anyone who reaches {address} runs code as its workers and "
                 "reads what crosses the wire")


def scheme(address: str, *, insecure: bool) -> str:
    """'tls' or 'tcp' (this one only with --insecure); any other address is refused in one line."""
    shown = repr(address) if not address.isprintable() else address
    name, sep, rest = address.partition("://")
    name, rest = (name.lower(), rest) if sep else ("tcp", address)  # Dask reads a bare host:port as tcp://
    if not rest or not address.isprintable():
        raise UsageError(f"--scheduler {shown}: give tls://HOST:PORT")
    if name == "tls":
        return "tls"
    if name == "tcp":
        if not insecure:
            raise UsageError(f"refusing the plain {shown}: whoever reaches a tcp:// scheduler runs code as its "
                             "workers and reads the reports; use tls:// with [fleet] tls_ca_file, tls_cert and "
                             "tls_key, or pass --insecure to accept that")
        return "tcp"
    raise UsageError(f"--scheduler {shown}: opsbook speaks tls:// to a Dask scheduler (tcp:// only with --insecure)")


def tls_files(config) -> dict[str, Path]:
    """[fleet] tls_ca_file, tls_cert and tls_key, made absolute against the configuration file, each readable, the
    key readable by its owner only, and the three loading as one TLS context."""
    section = (config.raw.get("fleet") or {}) if config is not None else {}
    missing = [k for k in TLS_KEYS if not section.get(k)]
    if missing:
        raise UsageError(f"a tls:// scheduler needs [fleet] {', '.join(TLS_KEYS)} in the configuration (missing: "
                         f"{', '.join(missing)}); see docs/fleet-security.md")
    base = config.base or Path.cwd()
    files = {}
    for key in TLS_KEYS:
        p = Path(section[key]).expanduser()
        p = p if p.is_absolute() else base / p
        try:
            with open(p, "rb"):
                mode = os.stat(p).st_mode
        except OSError as e:
            raise UsageError(f"[fleet] {key}: cannot read {p}: {e.strerror}") from None
        if key == "tls_key" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(f"[fleet] tls_key: {p} is readable by others; chmod 600 it (it lets its holder run code "
                             "on the cluster's workers)")
        files[key] = p
    try:
        ctx = ssl.create_default_context(cafile=str(files["tls_ca_file"]))
        ctx.load_cert_chain(str(files["tls_cert"]), str(files["tls_key"]))
    except (ssl.SSLError, ValueError) as e:
        raise UsageError(f"[fleet] the TLS files do not load together: {e.__class__.__name__}: "
                         f"{getattr(e, 'reason', None) or e}") from None
    return files


def security(config, address: str, *, insecure: bool):
    """The Dask `Security` for this scheduler: TLS with encryption required, or None for --insecure tcp://."""
    if scheme(address, insecure=insecure) == "tcp":
        return None
    files = tls_files(config)
    try:
        from distributed.security import Security  # noqa: PLC0415
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'opsbook[fleet]' (dask[distributed])") from None
    return Security(tls_ca_file=str(files["tls_ca_file"]), tls_client_cert=str(files["tls_cert"]),
                    tls_client_key=str(files["tls_key"]), require_encryption=True)
