"""Load training rows: local files and folders, registered datasets, hub ids; sampling and mixing.

A dataset spec is one of

* a local file (`.jsonl`, `.json`, `.csv`, `.parquet`) or a folder of them (every supported file
  directly in it, sorted by name);
* a registered dataset name (`swift_core.builtin.datasets` and plugins), or the hub id of one;
* a Hugging Face hub id `org/name`, loaded with `datasets.load_dataset`;

optionally followed by `#N` to sample N rows (seeded; more than available repeats the data and
samples the remainder, as ms-swift does). Rows of every spec are converted to the internal form
(`swift_core.datasets.formats`) and concatenated in order; the trainer shuffles.

A bad row raises a `BadRowError` naming the file, the line and the field. With
`skip_bad_rows=True` bad rows are skipped and listed in the result instead. Rows of hub datasets
are always skipped when bad (the user cannot fix the hub's data), and listed the same way.

Heavy libraries (`datasets`, `pyarrow`) are imported only when a hub dataset or a parquet file is
read.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import logging
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_core.atomic import write_bytes_atomic
from swift_core.datasets.formats import RowError, convert_row, json_type
from swift_core.errors import SwiftError, UnknownNameError, nearest

logger = logging.getLogger("swift_core")

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
JSON_LIST_KEYS = ("data", "rows", "train")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUE = {"1", "true", "yes", "on"}


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    """A row that could not be used: where it is, which field, and why."""

    file: str
    line: int
    field: str
    message: str
    unit: str = "line"  # "line" in text files; "row" (1-based index) in parquet files and hub datasets

    def __str__(self) -> str:
        return f"{self.file}, {self.unit} {self.line}, field '{self.field}': {self.message}"


class BadRowError(SwiftError):
    """A bad row, when bad rows are not skipped."""

    def __init__(self, bad_row: BadRow):
        super().__init__(str(bad_row))
        self.bad_row = bad_row


@dataclass
class SourceSummary:
    """What one spec contributed."""

    spec: str
    kind: str  # "file" | "folder" | "registered" | "hub"
    location: str  # the path or the hub id
    rows: int = 0  # rows contributed (after sampling)
    valid_rows: int = 0  # good rows before sampling
    bad_rows: int = 0
    sample: int | None = None
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = f"{self.spec}: {self.rows} rows"
        if self.sample is not None:
            text += f" (sampled from {self.valid_rows})"
        if self.bad_rows:
            text += f", {self.bad_rows} bad rows skipped"
        return text


@dataclass
class DatasetLoadResult:
    rows: list[dict[str, Any]]
    bad_rows: list[BadRow]
    sources: list[SourceSummary]

    def bad_rows_summary(self, limit: int = 10) -> str:
        """'' when no row was skipped; else how many and which (the first `limit`), with the first error."""
        if not self.bad_rows:
            return ""
        n = len(self.bad_rows)
        groups: dict[str, list[str]] = {}
        for bad in self.bad_rows[:limit]:
            groups.setdefault(bad.file, []).append(f"{bad.unit} {bad.line} ('{bad.field}')")
        where = "; ".join(f"{file} {', '.join(items)}" for file, items in groups.items())
        more = f" and {n - limit} more" if n > limit else ""
        return f"skipped {n} bad row{'s' if n != 1 else ''}: {where}{more}. First: {self.bad_rows[0]}"

    def summary(self) -> str:
        lines = [f"{len(self.rows)} rows from {len(self.sources)} source(s)"]
        lines += [f"  {s.describe()}" for s in self.sources]
        bad = self.bad_rows_summary()
        if bad:
            lines.append(bad)
        return "\n".join(lines)


# --- reading files ------------------------------------------------------------------------------

Record = tuple[int, Any]  # (line or row number, the raw object or a RowError)


# --- text encoding: a byte that is not UTF-8 is a bad row, named by line and byte ----------------

_BOM = b"\xef\xbb\xbf"
_UNDECODED = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of a bad byte


def _not_utf8(offset: int, byte: int) -> RowError:
    return RowError(
        "(encoding)", f"not UTF-8: byte {offset} of the file is 0x{byte:02x}; save the file as UTF-8"
    )


def _decode_file(path: Path) -> tuple[str, Callable[[int], int]]:
    """The file's text (a leading BOM dropped) with each byte that is not UTF-8 kept as a lone
    surrogate, and a function from a text offset to its byte offset in the file (for messages)."""
    data = path.read_bytes()
    skip = len(_BOM) if data.startswith(_BOM) else 0
    text = data[skip:].decode("utf-8", errors="surrogateescape")

    def byte_at(pos: int) -> int:
        return skip + len(text[:pos].encode("utf-8", errors="surrogateescape"))

    return text, byte_at


def _undecoded_in(text: str, start: int, end: int, byte_at: Callable[[int], int]) -> RowError | None:
    match = _UNDECODED.search(text, start, end)
    if match is None:
        return None
    return _not_utf8(byte_at(match.start()), ord(match.group()) - 0xDC00)


def _read_jsonl(path: Path) -> Iterator[Record]:
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            start, offset = offset, offset + len(raw)
            if number == 1 and raw.startswith(_BOM):
                raw, start = raw[len(_BOM) :], start + len(_BOM)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, _not_utf8(start + exc.start, raw[exc.start])
                continue
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, RowError("(json)", f"invalid JSON: {exc.msg} (column {exc.colno})")


class _Lines:
    """1-based line numbers of offsets in a text, counted incrementally (offsets only grow)."""

    def __init__(self, text: str):
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


_WS = re.compile(r"[ \t\n\r]*")


def _json_items(text: str, label: str, byte_at: Callable[[int], int] | None = None) -> list[Record]:
    """The items of a JSON list (top level, or under 'data'/'rows'/'train'), each with its start line.
    With `byte_at` (see `_decode_file`), an item holding a byte that is not UTF-8 is a bad row."""
    decoder = json.JSONDecoder()
    lines = _Lines(text)

    def ws(i: int) -> int:
        return _WS.match(text, i).end()  # type: ignore[union-attr]

    def decode(i: int) -> tuple[Any, int]:
        try:
            return decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise SwiftError(
                f"{label}, line {exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None

    def bad_json(i: int, expected: str) -> SwiftError:
        line = text.count("\n", 0, i) + 1
        found = repr(text[i]) if i < len(text) else "the end of the file"
        return SwiftError(f"{label}, line {line}: invalid JSON: expected {expected}, found {found}")

    def array(i: int) -> tuple[list[Record], int]:
        items: list[Record] = []
        i = ws(i + 1)
        if i < len(text) and text[i] == "]":
            return items, i + 1
        while True:
            start = ws(i)
            obj, i = decode(start)
            bad = _undecoded_in(text, start, i, byte_at) if byte_at is not None else None
            items.append((lines.at(start), bad if bad is not None else obj))
            if bad is not None:
                covered.append((start, i))
            i = ws(i)
            if i < len(text) and text[i] == ",":
                i += 1
            elif i < len(text) and text[i] == "]":
                return items, i + 1
            else:
                raise bad_json(i, "',' or ']'")

    covered: list[tuple[int, int]] = []  # spans of items that are bad rows for their bytes
    i = ws(0)
    if i < len(text) and text[i] == "[":
        items, end = array(i)
    elif i < len(text) and text[i] == "{":
        found: dict[str, list[Record]] = {}
        keys: list[str] = []
        i = ws(i + 1)
        if i < len(text) and text[i] == "}":
            end = i + 1
        else:
            while True:
                key, i = decode(ws(i))
                keys.append(str(key))
                i = ws(i)
                if i >= len(text) or text[i] != ":":
                    raise bad_json(i, "':'")
                i = ws(i + 1)
                if key in JSON_LIST_KEYS and key not in found and i < len(text) and text[i] == "[":
                    found[key], i = array(i)
                else:
                    _, i = decode(i)
                i = ws(i)
                if i < len(text) and text[i] == ",":
                    i += 1
                elif i < len(text) and text[i] == "}":
                    end = i + 1
                    break
                else:
                    raise bad_json(i, "',' or '}'")
        key = next((k for k in JSON_LIST_KEYS if k in found), None)
        if key is None:
            raise SwiftError(
                f"{label}: expected a JSON list of rows, or an object with the list under "
                f"{', '.join(repr(k) for k in JSON_LIST_KEYS)}; found an object with keys "
                f"{', '.join(repr(k) for k in keys) or '(none)'}"
            )
        items = found[key]
    else:
        _, end = decode(i)  # reports invalid JSON, if that is the problem
        raise SwiftError(f"{label}: expected a JSON list of rows, or an object with a 'data' list")
    if ws(end) != len(text):
        raise bad_json(ws(end), "the end of the file")
    if byte_at is not None:
        for match in _UNDECODED.finditer(text):
            if not any(a <= match.start() < b for a, b in covered):  # outside any row: the file's
                line = text.count("\n", 0, match.start()) + 1
                raise SwiftError(
                    f"{label}, line {line}: {_not_utf8(byte_at(match.start()), ord(match.group()) - 0xDC00).message}"
                )
    return items


def _read_json(path: Path, label: str) -> Iterator[Record]:
    text, byte_at = _decode_file(path)
    yield from _json_items(text, label, byte_at)


def _read_csv(path: Path, label: str) -> Iterator[Record]:
    text, byte_at = _decode_file(path)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)] + [len(text)]
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    previous = 0
    for fields in reader:
        start, previous = previous + 1, reader.line_num
        if not fields or all(not x.strip() for x in fields):
            continue
        span = (line_starts[start - 1], line_starts[min(previous, len(line_starts) - 1)])
        bad = _undecoded_in(text, *span, byte_at)
        if header is None:
            if bad is not None:
                raise SwiftError(f"{label}, line {start} (the header): {bad.message}")
            header = fields
            continue
        if bad is not None:
            yield start, bad
            continue
        yield start, {k: (fields[i] if i < len(fields) else None) for i, k in enumerate(header)}


def _read_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            number += 1
            yield number, record


def _file_records(path: Path, label: str) -> tuple[str, Iterator[Record]]:
    """(unit, records) of a local file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "line", _read_jsonl(path)
    if suffix == ".json":
        return "line", _read_json(path, label)
    if suffix == ".csv":
        return "line", _read_csv(path, label)
    if suffix == ".parquet":
        return "row", _read_parquet(path)
    raise SwiftError(
        f"{label}: unsupported file type {suffix or '(no extension)'!r}; "
        f"supported: {', '.join(SUPPORTED_SUFFIXES)} (or a folder of such files)"
    )


# --- images from parquet files and hub datasets -------------------------------------------------


def media_cache_dir() -> Path:
    """Where image bytes embedded in datasets are written: $SWIFT_CACHE_DIR/images."""
    root = os.environ.get("SWIFT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "swift"
    )
    return Path(root) / "images"


def _image_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"


def _materialize_image(value: Any) -> Any:
    """A hub/parquet image ({'bytes', 'path'}) as a local path; other values unchanged."""
    if not isinstance(value, dict) or not ({"bytes", "path"} & set(value)):
        return value
    data, path = value.get("bytes"), value.get("path")
    if isinstance(path, str) and os.path.isabs(path) and os.path.exists(path):
        return path
    if isinstance(data, (bytes, bytearray)) and data:
        suffix = os.path.splitext(path)[1] if isinstance(path, str) and path else ""
        target = media_cache_dir() / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix or _image_suffix(data)}"
        if not target.exists():
            write_bytes_atomic(target, bytes(data))
        return str(target)
    return path if isinstance(path, str) and path else value


def _materialize_images(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("images", "image"):
        value = row.get(key)
        if isinstance(value, dict):
            row[key] = _materialize_image(value)
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            row[key] = [_materialize_image(v) for v in value]
    return row


# --- the hub ------------------------------------------------------------------------------------


def hub_offline() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )


def _is_connection_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        if isinstance(seen, (ConnectionError, TimeoutError)) or any(
            word in name for word in ("Connect", "Timeout", "OfflineMode")
        ):
            return True
        if "couldn't reach" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _needs_hub_error(name: str, hf_id: str) -> SwiftError:
    what = f"dataset {name!r}" + (f" (hub id {hf_id})" if hf_id != name else "")
    why = (
        "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and it is not in the local cache"
        if hub_offline()
        else "the Hugging Face Hub cannot be reached and it is not in the local cache"
    )
    return SwiftError(
        f"{what} needs the Hugging Face Hub, but {why}. Download it once while online, or pass a "
        f"local file instead: --dataset path/to/train.jsonl (.jsonl, .json, .csv, .parquet, or a "
        f"folder of them)."
    )


def _cast_images_undecoded(ds: Any) -> Any:
    """Image columns as {'bytes', 'path'} instead of decoded PIL images."""
    import datasets

    for name, feature in list(ds.features.items()):
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(name, datasets.Image(decode=False))
        elif isinstance(getattr(feature, "feature", None), datasets.Image):
            ds = ds.cast_column(name, datasets.List(datasets.Image(decode=False)))
        elif isinstance(feature, list) and feature and isinstance(feature[0], datasets.Image):
            ds = ds.cast_column(name, [datasets.Image(decode=False)])
    return ds


def _hub_records(name: str, hf_id: str, subset: str, split: str) -> Iterator[Record]:
    try:
        import datasets
    except ImportError:
        raise SwiftError(
            f"dataset {name!r} is on the Hugging Face Hub ({hf_id}); loading it needs the 'datasets' "
            "package: pip install datasets"
        ) from None
    try:
        ds = datasets.load_dataset(hf_id, subset or None, split=split)
    except Exception as exc:
        if hub_offline() or _is_connection_error(exc):
            raise _needs_hub_error(name, hf_id) from exc
        raise SwiftError(
            f"cannot load hub dataset {hf_id!r}"
            + (f" (subset {subset!r})" if subset else "")
            + f", split {split!r}: {type(exc).__name__}: {exc}"
        ) from exc
    ds = _cast_images_undecoded(ds)
    yield from enumerate(ds, 1)


# --- specs --------------------------------------------------------------------------------------


@dataclass
class _Source:
    summary: SourceSummary
    # (file label, unit, records, base dir for relative paths, column mapping, skip bad rows always)
    parts: Callable[[], Iterator[tuple[str, str, Iterator[Record], str | None, dict[str, str], bool]]]


def parse_spec(spec: str) -> tuple[str, int | None]:
    """'name#N' -> ('name', N); a spec that exists as a path is never split."""
    if os.path.exists(os.path.expanduser(spec)):
        return spec, None
    head, sep, tail = spec.rpartition("#")
    if not sep or not head:
        return spec, None
    if not tail.strip().isdigit():
        raise SwiftError(
            f"dataset {spec!r}: the part after '#' must be a number of rows to sample, got {tail!r}"
        )
    n = int(tail)
    if n <= 0:
        raise SwiftError(f"dataset {spec!r}: the number of rows to sample must be positive, got {n}")
    return head, n


def _looks_like_path(target: str) -> bool:
    return (
        target.startswith(("./", "../", "/", "~", ".\\"))
        or os.path.splitext(target)[1].lower() in SUPPORTED_SUFFIXES
    )


def _local_source(spec: str, target: str, kind: str = "") -> _Source:
    path = Path(os.path.expanduser(target))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise SwiftError(
                f"dataset folder {target!r} has no data files; supported: {', '.join(SUPPORTED_SUFFIXES)}"
            )
        labels = [os.path.join(target, p.name) for p in files]
        summary = SourceSummary(spec, kind or "folder", target, files=labels)
    else:
        files, labels = [path], [target]
        summary = SourceSummary(spec, kind or "file", target, files=labels)

    def parts() -> Iterator[tuple[str, str, Iterator[Record], str | None, dict[str, str], bool]]:
        for file, label in zip(files, labels, strict=True):
            unit, records = _file_records(file, label)
            yield label, unit, records, str(file.resolve().parent), {}, False

    return _Source(summary, parts)


def _find_registered(registry: Any, target: str) -> Any:
    if target in registry:
        return registry.get(target)
    for desc in registry:
        if target in (desc.hf_id, desc.ms_id) and target:
            return desc
    return None


def _hub_source(
    spec: str, name: str, hf_id: str, subset: str, split: str, columns: dict[str, str], kind: str
) -> _Source:
    label = hf_id + (f":{subset}" if subset else "")
    summary = SourceSummary(spec, kind, label, files=[label])

    def parts() -> Iterator[tuple[str, str, Iterator[Record], str | None, dict[str, str], bool]]:
        yield label, "row", _hub_records(name, hf_id, subset, split), None, columns, True

    return _Source(summary, parts)


def _resolve(spec: str, target: str, manager: Any, split: str) -> _Source:
    path = Path(os.path.expanduser(target))
    if path.exists():
        return _local_source(spec, target)
    if _looks_like_path(target):
        raise SwiftError(f"dataset file not found: {target}")
    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    registry = manager.registry("datasets")
    desc = _find_registered(registry, target)
    if desc is not None:
        if desc.path:
            return _local_source(spec, desc.path, kind="registered")
        if not desc.hf_id:
            raise SwiftError(
                f"dataset {desc.name!r} is only on ModelScope ({desc.ms_id}), which Swift cannot download "
                "yet; download it and pass the local file: --dataset path/to/train.jsonl"
            )
        use_split = desc.split if split == "train" else split
        return _hub_source(
            spec, desc.name, desc.hf_id, desc.subset, use_split, dict(desc.columns), "registered"
        )
    if _HUB_ID.match(target):
        return _hub_source(spec, target, target, "", split, {}, "hub")
    names = [*registry.names(), *(a for d in registry for a in d.aliases)]
    close = nearest(target, names)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(
        f"unknown dataset {target!r}: not a file or folder, not a registered dataset and not a hub id "
        f"(org/name).{hint} Registered: {', '.join(registry.names()) or '(none)'}."
    )


def check_dataset_specs(specs: list[str], manager: Any = None, split: str = "train") -> None:
    """Refuse an unknown dataset name or a missing file now, reading no rows (what a pipeline
    checks before it imports torch)."""
    for spec in (s.strip() for s in specs if s and s.strip()):
        target, _ = parse_spec(spec)
        _resolve(spec, target, manager, split)


# --- sampling and loading -----------------------------------------------------------------------


def sample_indices(total: int, n: int, rng: random.Random) -> list[int]:
    """N indices of `total` rows: whole copies while N exceeds them, then a seeded sample of the rest."""
    if total <= 0:
        return []
    repeats, remainder = divmod(n, total)
    indices = list(range(total)) * repeats
    if remainder:
        indices += rng.sample(range(total), remainder)
    return indices


def _apply_columns(record: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    if not columns:
        return record
    out = {k: v for k, v in record.items() if k not in columns}
    for source, target in columns.items():
        if source in record:
            out[target] = record[source]
    return out


def _convert(
    record: Any, columns: dict[str, str], base_dir: str | None, answer_optional: bool = False
) -> dict[str, Any]:
    if isinstance(record, RowError):
        raise record
    if not isinstance(record, dict):
        raise RowError("(row)", f"expected an object, got {json_type(record)}")
    row = _materialize_images(_apply_columns(dict(record), columns))
    return convert_row(row, base_dir=base_dir, answer_optional=answer_optional)


def load_rows(
    specs: list[str] | str,
    *,
    skip_bad_rows: bool = False,
    seed: int = 42,
    manager: Any = None,
    split: str = "train",
    check: Callable[[dict[str, Any]], None] | None = None,
    answer_optional: bool = False,
    keep_columns: bool = False,
    modalities: tuple[str, ...] | None = None,
    family: str = "",
) -> DatasetLoadResult:
    """Load, convert, sample and concatenate the rows of every spec, in order.

    `split` is the hub split to read (a registered dataset's own split is used for "train").
    `manager` gives the dataset registry (default: the process's plugin manager).
    `check` is what the pipeline needs of each converted row (e.g. a rejected answer for DPO): it
    raises `RowError(field, message)`, reported with the file and line like any bad row.
    `answer_optional`: rows for inference may stop at the prompt (see `convert_row`).
    `keep_columns`: each row also gets `columns`, the record's fields the converted row does not
    hold (online RL hands them to reward functions: `solution`, ...), before `check` sees it.
    `modalities`: what the model (of family `family`) takes (`ModelFamily.modalities`); given, a
    row with images is refused unless "image" is among them, and every local image is opened.
    """
    from swift_core.datasets.images import check_row_images

    if isinstance(specs, str):
        specs = [specs]
    specs = [s.strip() for s in specs if s and s.strip()]
    if not specs:
        raise SwiftError("no dataset given: pass a file, a folder, a registered dataset name or a hub id")
    rng = random.Random(seed)
    result = DatasetLoadResult([], [], [])
    for spec in specs:
        target, sample = parse_spec(spec)
        source = _resolve(spec, target, manager, split)
        summary = source.summary
        summary.sample = sample
        rows: list[dict[str, Any]] = []
        for label, unit, records, base_dir, columns, always_skip in source.parts():
            for number, record in records:
                try:
                    row = _convert(record, columns, base_dir, answer_optional)
                    if modalities is not None:
                        check_row_images(row, modalities, family)
                    if keep_columns:
                        raw = _apply_columns(dict(record), columns)
                        row["columns"] = {k: v for k, v in raw.items() if k not in row}
                    if check is not None:
                        check(row)
                    rows.append(row)
                except RowError as exc:
                    bad = BadRow(label, number, exc.field, exc.message, unit)
                    if not (skip_bad_rows or always_skip):
                        raise BadRowError(bad) from None
                    result.bad_rows.append(bad)
                    summary.bad_rows += 1
        summary.valid_rows = len(rows)
        if sample is not None:
            if not rows:
                raise SwiftError(f"dataset {spec!r}: no rows to sample from in {summary.location}")
            seen: set[int] = set()
            picked = []
            for i in sample_indices(len(rows), sample, rng):
                picked.append(rows[i] if i not in seen else copy.deepcopy(rows[i]))
                seen.add(i)
            rows = picked
        if not rows:
            logger.warning("dataset %s gave no rows", spec)
        summary.rows = len(rows)
        result.rows += rows
        result.sources.append(summary)
    if result.bad_rows:
        logger.warning("%s", result.bad_rows_summary())
    if not result.rows:
        detail = f"; {result.bad_rows_summary()}" if result.bad_rows else ""
        raise SwiftError(f"no rows loaded from {', '.join(specs)}{detail}")
    return result
