"""Relation sizes on the shadow: the planner reads a table's and an index's size from its files, not from pg_class,
so each shadow relation gets a sparse file as long as the target's (no data: all-zero pages, no disk used)."""
from __future__ import annotations

import math
import os
from pathlib import Path

BLOCK = 8192
SEGMENT_BLOCKS = 131072  # RELSEG_SIZE: one file per 1 GiB, named relfilenode, relfilenode.1, ...
HEAP_TID = 6
LEAF_BYTES = (BLOCK - 24 - 16) * 0.9  # page header and btree special space; leaves fill to 90% (fillfactor)
POSTING_MAX_TIDS = 400  # a deduplicated posting list stops near a third of a page


def set_pages(data_dir: Path, filepath: str, pages: int) -> None:
    """Make the relation at `filepath` (pg_relation_filepath) `pages` blocks long, segment by segment."""
    from ..database.embedded import chown_to_account

    base = Path(data_dir) / filepath
    pages = max(int(pages), 0)
    segment = 0
    while True:
        path = base if segment == 0 else base.with_name(f"{base.name}.{segment}")
        blocks = min(max(pages - segment * SEGMENT_BLOCKS, 0), SEGMENT_BLOCKS)
        if segment and blocks == 0:
            break
        if not path.exists():
            path.touch(mode=0o600)
            chown_to_account(path)
        os.truncate(path, blocks * BLOCK)
        if blocks < SEGMENT_BLOCKS:
            break
        segment += 1


def btree_pages(reltuples: float, widths: list[float], n_distinct: float | None) -> int:
    """Estimated pages of a btree on columns of these average widths over `reltuples` rows: one tuple per row, or
    (deduplicated, PostgreSQL 13+) one posting list per distinct key with a heap pointer per row."""
    rows = max(float(reltuples), 0.0)
    tuple_bytes = _maxalign(8 + sum(max(float(w or 0), 1) for w in widths)) + 4  # header + keys, line pointer
    plain = rows * tuple_bytes
    groups = rows
    if n_distinct is not None and n_distinct != 0:
        groups = -n_distinct * rows if n_distinct < 0 else min(n_distinct, rows)
    groups = max(groups, rows / POSTING_MAX_TIDS)
    deduplicated = groups * tuple_bytes + (rows - groups) * HEAP_TID
    leaves = math.ceil(min(plain, deduplicated) / LEAF_BYTES)
    return 1 + leaves + math.ceil(leaves / 300)  # metapage, leaves, inner pages


def _maxalign(width: float) -> int:
    return int(math.ceil(max(float(width or 0), 1) / 8) * 8)
