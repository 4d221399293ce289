"""File helpers shared by the routing commands: read a path or stdin as bytes, write a file atomically."""
import os
import sys
import tempfile

from django.core.management.base import CommandError


def read_bytes(path):
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}")


def write_atomically(path, text, stdout):
    """Write all of ``text`` or nothing: a temp file in the same folder, then rename."""
    if path == "-":
        stdout.write(text, ending="")
        return
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".route-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
