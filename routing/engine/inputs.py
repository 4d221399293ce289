"""Reading prompt files strictly: every problem names its line, and nothing is returned unless all lines parse.

Formats: plain text (one prompt per line), JSONL (an object per line with a string ``prompt``), and for labelled
data JSONL or CSV with ``prompt`` and ``category``. Blank lines are skipped; line numbers count them.
"""
import csv
import io
import json


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


def _jsonl_objects(text):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFormatError(number, f"not valid JSON ({exc.msg}, column {exc.colno})")
        if not isinstance(obj, dict):
            raise InputFormatError(number, "each line must be a JSON object")
        yield number, obj


def _string_field(obj, field, number):
    if field not in obj:
        raise InputFormatError(number, f"missing field '{field}'")
    value = obj[field]
    if not isinstance(value, str):
        raise InputFormatError(number, f"'{field}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InputFormatError(number, f"'{field}' is empty")
    return value


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
