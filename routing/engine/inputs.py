"""Reading prompt files strictly: every problem names its line, and nothing is returned unless all lines parse.

Formats: plain text (one prompt per line), JSONL (an object per line with a string ``prompt``), and for labelled
data JSONL or CSV with ``prompt`` and ``category``. Blank lines are skipped; line numbers count them.
"""
import csv
import io
import json
import re

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL (no database stores it) and unpaired surrogates (not Unicode)


class InputFormatError(ValueError):
    def __init__(self, line, message):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


def decode(data, name="input"):
    """Bytes → str as strict UTF-8 (a BOM is allowed); the error names the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputFormatError(line, f"{name} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                                     f"save it as UTF-8 and try again")


def sniff_format(text, filename=""):
    lower = filename.lower()
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".txt"):
        return "text"
    first = next((line.lstrip() for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.startswith("{") else "text"


def _jsonl_object(number, line):
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputFormatError(number, f"not valid JSON ({exc.msg}, column {exc.colno})")
    except RecursionError:
        raise InputFormatError(number, "JSON nested too deeply")
    if not isinstance(obj, dict):
        raise InputFormatError(number, "each line must be a JSON object")
    return obj


def _jsonl_objects(text):
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, _jsonl_object(number, line)


def _clean_text(value, field, number):
    match = _BAD_TEXT.search(value)
    if match:
        what = "a NUL character" if match.group() == "\x00" else "an unpaired surrogate (invalid Unicode)"
        raise InputFormatError(number, f"'{field}' contains {what}")
    return value


def _string_field(obj, field, number):
    if field not in obj:
        raise InputFormatError(number, f"missing field '{field}'")
    value = obj[field]
    if not isinstance(value, str):
        raise InputFormatError(number, f"'{field}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InputFormatError(number, f"'{field}' is empty")
    return _clean_text(value, field, number)


def read_prompts(text, fmt="text", max_bytes=None):
    """[(line number, prompt)] from plain text or JSONL."""
    out = []
    if fmt == "jsonl":
        rows = ((n, _string_field(obj, "prompt", n)) for n, obj in _jsonl_objects(text))
    elif fmt == "text":
        rows = ((n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip())
    else:
        raise InputFormatError(0, f"unsupported format {fmt!r}: use text or jsonl")
    for number, prompt in rows:
        if max_bytes is not None and len(prompt.encode("utf-8")) > max_bytes:
            raise InputFormatError(number, f"prompt is {len(prompt.encode('utf-8'))} bytes; the limit is "
                                           f"{max_bytes}")
        out.append((number, prompt))
    if not out:
        raise InputFormatError(0, "no prompts found (the input is empty)")
    return out


def read_labelled(text, fmt="jsonl"):
    """([prompts], [categories]) from JSONL or CSV with 'prompt' and 'category'."""
    prompts, labels = [], []
    if fmt == "jsonl":
        for number, obj in _jsonl_objects(text):
            prompts.append(_string_field(obj, "prompt", number))
            labels.append(_string_field(obj, "category", number).strip())
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = {"prompt", "category"} - set(reader.fieldnames or [])
        if missing:
            raise InputFormatError(1, f"CSV header lacks column(s): {', '.join(sorted(missing))}")
        for row in reader:
            number = reader.line_num
            prompts.append(_string_field(row, "prompt", number))
            labels.append(_string_field(row, "category", number).strip())
    else:
        raise InputFormatError(0, f"unsupported format {fmt!r}: use jsonl or csv")
    if not prompts:
        raise InputFormatError(0, "no labelled prompts found (the input is empty)")
    return prompts, labels


class Item(tuple):
    """One prompt of an upload: (line, prompt, external id or "", label or "")."""

    __slots__ = ()

    def __new__(cls, line, prompt, external_id="", label=""):
        return super().__new__(cls, (line, prompt, external_id, label))

    line = property(lambda self: self[0])
    prompt = property(lambda self: self[1])
    external_id = property(lambda self: self[2])
    label = property(lambda self: self[3])


def _optional_string(obj, field, number, max_chars=None):
    value = obj.get(field)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputFormatError(number, f"'{field}' must be a string or integer, got {type(value).__name__}")
    value = _clean_text(str(value).strip(), field, number)
    if max_chars is not None and len(value) > max_chars:
        raise InputFormatError(number, f"'{field}' is {len(value)} characters; the limit is {max_chars}")
    return value


def _csv_rows(text):
    """(first physical line, row dict or InputFormatError) per CSV record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise InputFormatError(1, f"bad CSV header ({exc})")
    if "prompt" not in header:
        raise InputFormatError(1, "CSV header lacks a 'prompt' column"
                                  f" (found: {', '.join(header) or 'nothing'})")
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, InputFormatError(start, f"bad CSV ({exc})")
            return
        if fields:
            yield start, (InputFormatError(start, f"{len(fields)} fields but the header has {len(header)} columns")
                          if len(fields) > len(header) else dict(zip(header, fields)))
        start = reader.line_num + 1


def _stop_on_fatal(rows, errors):
    """Yield rows until one raises (a missing CSV column, an unknown format): that error ends the file."""
    try:
        yield from rows
    except InputFormatError as exc:
        errors.append(exc)


def read_items(text, fmt="text", max_bytes=None, max_items=None, max_errors=50, max_id_chars=None,
               max_label_chars=None):
    """([Item], [InputFormatError]) for an upload: every bad line is reported, up to ``max_errors``.

    Text: one prompt per line. JSONL: ``prompt`` (required), ``id`` and ``category`` (optional). CSV: a header
    with a ``prompt`` column, optional ``id`` and ``category`` columns. ``id`` and ``category`` longer than
    ``max_id_chars`` / ``max_label_chars`` (what their columns hold) are errors of their line. Callers decide what to
    do with a partly valid file; the upload path rejects it whole.
    """
    items, errors = [], []

    def rows():
        if fmt == "text":
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield number, {"prompt": line}
        elif fmt == "jsonl":
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    yield number, _jsonl_object(number, line)
                except InputFormatError as exc:  # collected: every bad line is reported
                    yield number, exc
        elif fmt == "csv":
            yield from _csv_rows(text)
        else:
            raise InputFormatError(0, f"unsupported format {fmt!r}: use text, jsonl or csv")

    for number, row in _stop_on_fatal(rows(), errors):
        try:
            if isinstance(row, InputFormatError):
                raise row
            prompt = _string_field(row, "prompt", number)
            size = len(prompt.encode("utf-8"))
            if max_bytes is not None and size > max_bytes:
                raise InputFormatError(number, f"prompt is {size} bytes; the limit is {max_bytes}")
            items.append(Item(number, prompt, _optional_string(row, "id", number, max_id_chars),
                              _optional_string(row, "category", number, max_label_chars)))
        except InputFormatError as exc:
            errors.append(exc)
            if len(errors) >= max_errors:
                break
        if max_items is not None and len(items) > max_items:
            errors.append(InputFormatError(number, f"too many prompts: the limit is {max_items} per upload"))
            break
    if not items and not errors:
        errors.append(InputFormatError(0, "no prompts found (the input is empty)"))
    return items, errors
