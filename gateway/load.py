"""What this worker process is doing now (read by the gateway's calls and its metrics)."""

from __future__ import annotations


class WorkerLoad:
    """What this worker process is doing now, all its calls together.

    Not class attributes of Call: CPython caches attribute lookups per type, and a write to
    a class attribute clears those caches for every Call (callgrind: the four such writes a
    call made cost 37k instructions of the project's own ~260k)."""

    __slots__ = ("bytes_held", "calls_in_flight", "streams_open", "unchecked_bytes")

    def __init__(self) -> None:
        self.calls_in_flight = 0
        self.streams_open = 0  # streams being relayed
        # Bytes of request body the calls hold (AI_GATEWAY_MAX_BUFFERED_BYTES).
        self.bytes_held = 0
        # Of those, the parts of bodies still arriving whose call's token is not checked yet.
        self.unchecked_bytes = 0


worker = WorkerLoad()
