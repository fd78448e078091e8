"""csv readers that take fields as large as PostgreSQL writes them (the csv module stops at 128 KiB)."""
from __future__ import annotations

import csv
import sys

# PostgreSQL takes a statement of up to 1 GB (MaxAllocSize) and logs it whole in one csvlog field, its quotes
# doubled: up to twice that. The limit is process-wide in the csv module; it is only ever raised here.
FIELD_LIMIT = min(2 * (1 << 30), sys.maxsize)


def _allow_large_fields() -> None:
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)


def csv_reader(f, **kw):
    """csv.reader over `f`, taking fields up to FIELD_LIMIT characters."""
    _allow_large_fields()
    return csv.reader(f, **kw)


def csv_dict_reader(f, **kw):
    """csv.DictReader over `f`, taking fields up to FIELD_LIMIT characters."""
    _allow_large_fields()
    return csv.DictReader(f, **kw)
