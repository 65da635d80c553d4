"""Datasets: loading, format detection and conversion to the internal row form.

`load_rows(specs)` reads files, folders, registered datasets and hub ids and returns rows in the
internal form (see `swift_core.datasets.formats`); `convert_row(row)` converts one row.
Tokenization, caching and packing live in the sibling modules (`encode`, ...).
"""

from swift_core.datasets.formats import FORMATS, RowError, convert_row, detect_format
from swift_core.datasets.loader import (
    SUPPORTED_SUFFIXES,
    BadRow,
    BadRowError,
    DatasetLoadResult,
    SourceSummary,
    load_rows,
)

__all__ = [
    "FORMATS",
    "SUPPORTED_SUFFIXES",
    "BadRow",
    "BadRowError",
    "DatasetLoadResult",
    "RowError",
    "SourceSummary",
    "convert_row",
    "detect_format",
    "load_rows",
]
