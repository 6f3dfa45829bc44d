"""Static files (WhiteNoise) served as the ASGI server wants them.

WhiteNoise answers with a file response whose content is a file, read through a synchronous
iterator. Django's ASGI handler then reads it in a thread it lends the iterator, warning once
per process ("StreamingHttpResponse must consume synchronous iterators"). Under ASGI the file
is handed over as an asynchronous iterator instead: no warning, and the same bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        response = super().__call__(request)
        if (
            isinstance(request, ASGIRequest)
            and isinstance(response, FileResponse)
            and response.file_to_stream is not None
        ):
            response.streaming_content = _chunks(response.file_to_stream, response.block_size)
        return response


async def _chunks(file: Any, size: int) -> AsyncIterator[bytes]:
    """The file's bytes (closed with the response, which keeps it among its closers)."""
    while chunk := await asyncio.to_thread(file.read, size):
        yield chunk
