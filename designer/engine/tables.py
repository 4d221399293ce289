"""Quality tables and models files: parse CSV or JSONL into arrays, with line-numbered errors.

Why: operators upload files written by different judges and scripts. Every mistake must name the line to fix,
and nothing half-parsed may reach the optimiser. Score scales differ by source (1-10, -10..10, 0/1), so each
table keeps its own scores; nothing here rescales or merges tables.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_ERRORS = 20  # enough to fix a file in one pass without flooding the page

PROMPT_ID = ("prompt_id", "question_id")
PROMPT_TEXT = ("prompt", "turns")  # `turns` (MT-Bench style): the first turn is what a router sees
MISSING = ("",)  # an empty score cell means "not judged" (e.g. the judge's output was unparsable)


class TableError(ValueError):
    """A file that cannot be used; `errors` lists one message per problem, each starting with `line N:`."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class ModelInfo:
    """A model's size in parameters (billions by convention); `active` < `total` only for mixture-of-experts."""

    name: str
    total_params: float
    active_params: float

    def params(self, kind: str) -> float:
        """Cost per prompt: `total` (memory-bound serving) or `active` (compute per token)."""
        if kind not in ("total", "active"):
            raise ValueError(f"parameter kind must be 'total' or 'active', not {kind!r}")
        return self.total_params if kind == "total" else self.active_params


@dataclass(eq=False)
class PromptScores:
    """Per-prompt scores: `scores[p, m]` is the mean over turns for prompt `prompt_ids[p]` and model `models[m]`
    (NaN where that model was not judged on that prompt)."""

    name: str
    prompt_ids: list[str]
    models: list[str]
    scores: np.ndarray
    prompts: dict[str, str] = field(default_factory=dict)
    model_lines: dict[str, int] = field(default_factory=dict)  # first line of each model, for error messages

    def complete(self, models: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Prompts judged for every one of `models`, and their P x len(models) score matrix in that order.

        Why: held-out comparisons are only fair on prompts every expert answered."""
        absent = [m for m in models if m not in self.models]
        if absent:
            raise TableError([f"model {m!r} has no scores in table {self.name!r}" for m in absent])
        cols = self.scores[:, [self.models.index(m) for m in models]]
        rows = ~np.isnan(cols).any(axis=1)
        return [p for p, ok in zip(self.prompt_ids, rows) if ok], cols[rows]

    def by_category(self, categories: Mapping[str, str]) -> CategoryScores:
        """Mean score per (category, model) over the prompts `categories` labels, with prompt counts."""
        names = sorted({categories[p] for p in self.prompt_ids if p in categories})
        index = {c: i for i, c in enumerate(names)}
        sums = np.zeros((len(names), len(self.models)))
        judged = np.zeros_like(sums)
        counts = np.zeros(len(names))
        for row, pid in enumerate(self.prompt_ids):
            if pid in categories:
                i = index[categories[pid]]
                ok = ~np.isnan(self.scores[row])
                sums[i, ok] += self.scores[row, ok]
                judged[i, ok] += 1
                counts[i] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(judged > 0, sums / judged, np.nan)
        return CategoryScores(self.name, names, list(self.models), means, counts, dict(self.model_lines))


@dataclass(eq=False)
class CategoryScores:
    """Per-category quality: `scores[c, m]` (NaN = not measured, so never chosen); `counts` = prompts per category
    when known (used as frequencies)."""

    name: str
    categories: list[str]
    models: list[str]
    scores: np.ndarray
    counts: np.ndarray | None = None
    model_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Questions:
    """Prompt text (and a label, where the file has one) by prompt id."""

    prompts: dict[str, str]
    categories: dict[str, str]


class _Errors:
    """Collects messages and stops the parse once MAX_ERRORS have been seen."""

    def __init__(self):
        self.items: list[str] = []

    def add(self, line: int, message: str) -> None:
        self.items.append(f"line {line}: {message}")
        if len(self.items) >= MAX_ERRORS:
            self.raise_if_any()

    def raise_if_any(self) -> None:
        if self.items:
            raise TableError(self.items)


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TableError([f"line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"])


def _is_jsonl(filename: str, text: str) -> bool:
    suffix = filename.lower().rsplit(".", 1)[-1]
    if suffix in ("jsonl", "json", "ndjson"):
        return True
    return suffix != "csv" and text.lstrip().startswith("{")


def _records(data: bytes | str, filename: str, required: Sequence[Sequence[str]],
             errors: _Errors) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) from a CSV or JSONL file; a required column is any of its aliases."""
    text = _decode(data)
    if not text.strip():
        raise TableError([f"line 1: {filename} is empty"])
    if _is_jsonl(filename, text):
        for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.add(number, f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                errors.add(number, "expected a JSON object")
                continue
            lacking = [names[0] for names in required if not any(n in record for n in names)]
            if lacking:
                errors.add(number, f"missing field(s) {', '.join(map(repr, lacking))}")
                continue
            yield number, record
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip() for h in next(reader)]
        lacking = [names[0] for names in required if not any(n in header for n in names)]
        if lacking:
            raise TableError([f"line 1: missing column(s) {', '.join(map(repr, lacking))} "
                              f"(found: {', '.join(header)})"])
        end = reader.line_num
        try:
            for row in reader:
                start, end = end + 1, reader.line_num  # a quoted field may span lines: report where it starts
                if not row:
                    continue
                if len(row) != len(header):
                    errors.add(start, f"expected {len(header)} fields, got {len(row)}")
                else:
                    yield start, dict(zip(header, row))
        except csv.Error as exc:
            errors.add(end + 1, f"malformed CSV ({exc})")


def _pick(record: dict, names: Sequence[str]):
    return next((record[n] for n in names if n in record), None)


def _number(value, line: int, what: str, errors: _Errors, missing: Sequence[str] | None = None) -> float | None:
    """A finite number; None for a value in `missing` (or null) where missing values are allowed; otherwise
    None with the error recorded."""
    blank = ("",) if missing is None else missing
    if value is None or (isinstance(value, str) and value.strip() in blank):
        if missing is None:
            errors.add(line, f"{what} is empty")
        return None
    if isinstance(value, bool):
        errors.add(line, f"{what} {value!r} is not a number")
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        errors.add(line, f"{what} {value!r} is not a number")
        return None
    if not math.isfinite(number):
        errors.add(line, f"{what} {value!r} is not a finite number")
        return None
    return number


def _text(value) -> str:
    if isinstance(value, list):  # MT-Bench `turns`
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


def parse_prompt_scores(data: bytes | str, filename: str = "scores.csv", *, name: str | None = None,
                        missing: Sequence[str] = MISSING) -> PromptScores:
    """Per-prompt scores: columns prompt_id (or question_id), model, score; optional prompt, turn.

    Several turns of one prompt are averaged, as MT-Bench does. Values in `missing` (and JSON null) mean
    "not judged" and leave NaN; any other non-numeric score is an error."""
    errors, seen = _Errors(), {}
    pids: dict[str, int] = {}
    models: dict[str, int] = {}
    model_lines: dict[str, int] = {}
    prompts: dict[str, str] = {}
    values: dict[tuple[int, int], list[float]] = {}
    for line, record in _records(data, filename, (PROMPT_ID, ("model",), ("score",)), errors):
        pid, model = _text(_pick(record, PROMPT_ID)), _text(record["model"])
        if not pid or not model:
            errors.add(line, "empty prompt_id or model")
            continue
        key = (pid, model, _text(record.get("turn")))
        if key in seen:
            turn = f", turn {key[2]}" if key[2] else ""
            errors.add(line, f"duplicate row for prompt {pid!r}, model {model!r}{turn} (first at line {seen[key]})")
            continue
        seen[key] = line
        score = _number(record["score"], line, "score", errors, missing)
        p = pids.setdefault(pid, len(pids))
        m = models.setdefault(model, len(models))
        model_lines.setdefault(model, line)
        text = _text(_pick(record, PROMPT_TEXT))
        if text:
            prompts.setdefault(pid, text)
        if score is not None:
            values.setdefault((p, m), []).append(score)
    errors.raise_if_any()
    matrix = np.full((len(pids), len(models)), np.nan)
    for (p, m), scores in values.items():
        matrix[p, m] = sum(scores) / len(scores)
    return PromptScores(name or filename, list(pids), list(models), matrix, prompts, model_lines)


def parse_category_scores(data: bytes | str, filename: str = "categories.csv", *, name: str | None = None,
                          missing: Sequence[str] = MISSING) -> CategoryScores:
    """Per-category quality: columns category, model, score. A (category, model) pair not listed stays NaN."""
    errors, seen = _Errors(), {}
    cats: dict[str, int] = {}
    models: dict[str, int] = {}
    model_lines: dict[str, int] = {}
    values: dict[tuple[int, int], float] = {}
    for line, record in _records(data, filename, (("category",), ("model",), ("score",)), errors):
        cat, model = _text(record["category"]), _text(record["model"])
        if not cat or not model:
            errors.add(line, "empty category or model")
            continue
        if (cat, model) in seen:
            errors.add(line, f"duplicate row for category {cat!r}, model {model!r} (first at line {seen[cat, model]})")
            continue
        seen[cat, model] = line
        score = _number(record["score"], line, "score", errors, missing)
        c, m = cats.setdefault(cat, len(cats)), models.setdefault(model, len(models))
        model_lines.setdefault(model, line)
        if score is not None:
            values[c, m] = score
    errors.raise_if_any()
    matrix = np.full((len(cats), len(models)), np.nan)
    for (c, m), score in values.items():
        matrix[c, m] = score
    return CategoryScores(name or filename, list(cats), list(models), matrix, None, model_lines)


def parse_questions(data: bytes | str, filename: str = "questions.jsonl") -> Questions:
    """Prompts by id: prompt_id (or question_id) and prompt (or MT-Bench `turns`); optional category label."""
    errors, seen = _Errors(), {}
    prompts: dict[str, str] = {}
    labels: dict[str, str] = {}
    for line, record in _records(data, filename, (PROMPT_ID, PROMPT_TEXT), errors):
        pid, text = _text(_pick(record, PROMPT_ID)), _text(_pick(record, PROMPT_TEXT))
        if not pid or not text:
            errors.add(line, "empty prompt_id or prompt")
        elif pid in seen:
            errors.add(line, f"duplicate prompt {pid!r} (first at line {seen[pid]})")
        else:
            seen[pid] = line
            prompts[pid] = text
            if _text(record.get("category")):
                labels[pid] = _text(record["category"])
    errors.raise_if_any()
    return Questions(prompts, labels)


def parse_models(data: bytes | str, filename: str = "models.csv") -> dict[str, ModelInfo]:
    """Models file: columns model, total_params; optional active_params (empty = dense, i.e. equal to total)."""
    errors, seen = _Errors(), {}
    out: dict[str, ModelInfo] = {}
    for line, record in _records(data, filename, (("model",), ("total_params",)), errors):
        model = _text(record["model"])
        if not model:
            errors.add(line, "empty model name")
            continue
        if model in seen:
            errors.add(line, f"duplicate model {model!r} (first at line {seen[model]})")
            continue
        seen[model] = line
        total = _number(record["total_params"], line, "total_params", errors)
        active = _number(record.get("active_params"), line, "active_params", errors, ("",))
        if total is None:
            continue
        active = total if active is None else active
        if total <= 0 or active <= 0:
            errors.add(line, "parameter counts must be positive")
        elif active > total:
            errors.add(line, f"active_params {active:g} exceeds total_params {total:g}")
        else:
            out[model] = ModelInfo(model, total, active)
    errors.raise_if_any()
    return out


def check_models(table: PromptScores | CategoryScores, models: Mapping[str, ModelInfo]) -> None:
    """Every model a table scores must be in the models file: its parameters are its cost."""
    unknown = [m for m in table.models if m not in models]
    if unknown:
        raise TableError([f"line {table.model_lines.get(m, 1)}: model {m!r} is not in the models file"
                          for m in unknown][:MAX_ERRORS])
