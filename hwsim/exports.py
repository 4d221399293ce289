"""Downloads computed once: the worker that runs a simulation writes every CSV table and the Chrome trace as gzip
streams into the database (RunExport, cut into RunExportPart rows), and a download streams those bytes back.

Why the database: in distributed mode any web process, on any machine, must serve any run's downloads, and the
database is the one store they all share. Why parts: neither the worker nor a web process ever holds a whole
download (a 1M-request run's requests table is 137 MB of CSV, about 59 MB gzipped): the worker compresses as it
formats and writes a part each PART_BYTES; a download reads one part at a time, and sends it as is to a client that
accepts gzip, or inflates it in pieces of at most OUT_BYTES for one that does not.
CSV text cells (expert and machine names a user may have typed) go through coe_site.exports.spreadsheet_safe.
"""
import json
import zlib

from asgiref.sync import sync_to_async

from coe_site.exports import spreadsheet_safe
from hwsim.engine import TABLES, chrome_trace
from hwsim.engine.trace import iter_csv

from .models import RunExport, RunExportPart

PART_BYTES = 1 << 20  # compressed bytes per stored part
OUT_BYTES = 1 << 20  # inflated bytes per piece sent to a client that does not take gzip
LEVEL = 1  # zlib level: a fifth of the default level 6's time on the requests table, 12 % larger (BENCHMARKS.md)
TRACE = "trace.json"
NAMES = tuple(f"{t}.csv" for t in TABLES) + (TRACE,)
CONTENT_TYPES = {TRACE: "application/json"}
CSV_TYPE = "text/csv; charset=utf-8"
_TEXT_BATCH = 1 << 16  # characters of trace JSON gathered before compressing (iterencode yields tiny strings)


def content_type(name):
    return CONTENT_TYPES.get(name, CSV_TYPE)


def _text(result, name):
    """The download's text, in pieces: byte for byte what to_csv / json.dumps(chrome_trace) give, formula cells
    of the CSV tables neutralised."""
    if name == TRACE:
        batch, size = [], 0
        for piece in json.JSONEncoder().iterencode(chrome_trace(result)):
            batch.append(piece)
            size += len(piece)
            if size >= _TEXT_BATCH:
                yield "".join(batch)
                batch, size = [], 0
        yield "".join(batch)
    else:
        yield from iter_csv(result, name.removesuffix(".csv"), text=spreadsheet_safe)


def write(run_id, token, result, renew=lambda: None):
    """Write every download of `result` for run `run_id` under claim `token`; `renew()` is called after each part
    (it renews the claim, and raises to stop when the claim was taken over). What an earlier attempt under the same
    claim left (a task retried after an outage) is replaced."""
    discard_claim(run_id, token)
    for name in NAMES:
        export = RunExport.objects.create(run_id=run_id, token=token, name=name)
        deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)  # 31: a gzip header (mtime 0: same bytes every time)
        pending, size, stored, index = bytearray(), 0, 0, 0
        for text in _text(result, name):
            raw = text.encode()
            size += len(raw)
            pending += deflate.compress(raw)
            while len(pending) >= PART_BYTES:
                RunExportPart.objects.create(export=export, index=index, data=bytes(pending[:PART_BYTES]))
                del pending[:PART_BYTES]
                stored, index = stored + PART_BYTES, index + 1
                renew()
        pending += deflate.flush()
        if pending:
            RunExportPart.objects.create(export=export, index=index, data=bytes(pending))
            stored, index = stored + len(pending), index + 1
        RunExport.objects.filter(pk=export.pk).update(size=size, stored=stored, parts=index)


def discard(run_id, *, keep):
    """Delete the run's exports written under any claim but `keep` (left by writers that lost their claim)."""
    RunExport.objects.filter(run_id=run_id).exclude(token=keep).delete()


def discard_claim(run_id, token):
    """Delete what the claim `token` wrote (it lost the run, or its writing failed halfway)."""
    RunExport.objects.filter(run_id=run_id, token=token).delete()


def _part(export_id, index):
    return bytes(RunExportPart.objects.filter(export_id=export_id, index=index).values_list("data", flat=True).get())


def _inflate(inflater, data):
    while data:
        out = inflater.decompress(data, OUT_BYTES)
        data = inflater.unconsumed_tail
        if out:
            yield out


def stream(export, *, gunzip):
    """The stored gzip bytes of `export`, part by part (inflated when `gunzip`), for a WSGI response."""
    inflater = zlib.decompressobj(31) if gunzip else None
    for index in range(export.parts):
        data = _part(export.pk, index)
        if inflater:
            yield from _inflate(inflater, data)
        else:
            yield data
    if inflater and (tail := inflater.flush()):
        yield tail


async def astream(export, *, gunzip):
    """stream() for an ASGI response: Django would read a synchronous iterator whole before sending it."""
    inflater = zlib.decompressobj(31) if gunzip else None
    read = sync_to_async(_part)
    for index in range(export.parts):
        data = await read(export.pk, index)
        if inflater:
            for out in _inflate(inflater, data):
                yield out
        else:
            yield data
    if inflater and (tail := inflater.flush()):
        yield tail
