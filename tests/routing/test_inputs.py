"""Strict reading of prompt files: line-numbered errors, nothing accepted on error."""
import pytest

from routing.engine.inputs import InputFormatError, decode, read_labelled, read_prompts, sniff_format


def test_text_skips_blank_lines_but_counts_them():
    assert read_prompts("one\n\n two \n", "text") == [(1, "one"), (3, " two ")]


def test_jsonl_errors_name_the_line():
    with pytest.raises(InputFormatError, match="line 2: not valid JSON"):
        read_prompts('{"prompt": "a"}\n{"prompt": \n', "jsonl")
    with pytest.raises(InputFormatError, match="line 1: missing field 'prompt'"):
        read_prompts('{"text": "a"}\n', "jsonl")
    with pytest.raises(InputFormatError, match="line 3: 'prompt' must be a string"):
        read_prompts('{"prompt": "a"}\n\n{"prompt": 5}\n', "jsonl")
    with pytest.raises(InputFormatError, match="line 1: each line must be a JSON object"):
        read_prompts('["a"]\n', "jsonl")


def test_size_limit_and_empty_input():
    with pytest.raises(InputFormatError, match="line 2: prompt is 11 bytes; the limit is 10"):
        read_prompts("ok\n" + "é" * 5 + "x\n", "text", max_bytes=10)
    with pytest.raises(InputFormatError, match="empty"):
        read_prompts("\n\n", "text")


def test_decode_names_line_of_bad_byte():
    assert decode("\ufeffhé".encode("utf-8")) == "hé"
    with pytest.raises(InputFormatError, match="line 2: .* not valid UTF-8"):
        decode(b"fine\ncaf\xe9\n")


def test_labelled_csv_and_jsonl():
    assert read_labelled("prompt,category\nhi,general\n", "csv") == (["hi"], ["general"])
    assert read_labelled('{"prompt": "2+2", "category": "math"}', "jsonl") == (["2+2"], ["math"])
    with pytest.raises(InputFormatError, match="lacks column"):
        read_labelled("text,category\nhi,general\n", "csv")
    with pytest.raises(InputFormatError, match="line 3: 'category' is empty"):
        read_labelled("prompt,category\nhi,general\nyo,\n", "csv")


def test_sniff_format():
    assert sniff_format("x", "a.JSONL") == "jsonl"
    assert sniff_format("x", "a.csv") == "csv"
    assert sniff_format('\n{"prompt": 1}') == "jsonl"
    assert sniff_format("plain") == "text"
