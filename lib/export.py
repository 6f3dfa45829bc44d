"""CSV downloads, streamed row by row (a large export never sits in memory), safe to open in
a spreadsheet."""

from __future__ import annotations

import csv
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.http import content_disposition_header

# Lines read at a time under ASGI.
CHUNK_LINES = 500


class _Echo:
    def write(self, value: str) -> str:
        return value


def spreadsheet_safe(cell: str) -> str:
    """Names and labels are typed by people; a cell starting with = + - @ would be a formula
    when the export is opened in a spreadsheet, so such cells get a leading apostrophe."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def csv_download(
    request: HttpRequest, filename: str, header: list[str], rows: Iterable[Iterable[Any]]
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            cells = ("" if cell is None else str(cell) for cell in row)
            yield writer.writerow([spreadsheet_safe(cell) for cell in cells])

    content = _in_chunks(lines()) if isinstance(request, ASGIRequest) else lines()
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    # Quoted and, for a name outside ASCII (a username), encoded as RFC 6266 asks.
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    return response


async def _in_chunks(lines: Iterator[str]) -> AsyncIterator[str]:
    """Under ASGI (the server), the lines read a few hundred at a time in the thread the view
    ran in, where its database connection is. Given the lines themselves, Django would read
    them all into memory before sending any, and log a warning."""
    take = sync_to_async(lambda: list(itertools.islice(lines, CHUNK_LINES)), thread_sensitive=True)
    while batch := await take():
        yield "".join(batch)
