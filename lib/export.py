"""CSV downloads, streamed row by row (a large export never sits in memory), safe to open in
a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header


class _Echo:
    def write(self, value: str) -> str:
        return value


def spreadsheet_safe(cell: str) -> str:
    """Names and labels are typed by people; a cell starting with = + - @ would be a formula
    when the export is opened in a spreadsheet, so such cells get a leading apostrophe."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def csv_download(
    filename: str, header: list[str], rows: Iterable[Iterable[Any]]
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            cells = ("" if cell is None else str(cell) for cell in row)
            yield writer.writerow([spreadsheet_safe(cell) for cell in cells])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    # Quoted and, for a name outside ASCII (a username), encoded as RFC 6266 asks.
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    return response
