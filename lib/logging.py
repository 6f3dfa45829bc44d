"""Log records that say what happened in one line, without secrets or stack noise."""

from __future__ import annotations

import logging

from .query import hide_credentials


class ClientErrorsInOneLine(logging.Filter):
    """A 4xx is the client's doing, not a bug: one line (method, path, status, user, reason)
    instead of Django's message plus a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request = getattr(record, "request", None)
        if not isinstance(status, int) or not 400 <= status < 500 or request is None:
            return True
        reason = ""
        if record.exc_info and record.exc_info[1] is not None:
            reason = str(record.exc_info[1]) or type(record.exc_info[1]).__name__
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else "-"
        record.msg = "%s %s %s user=%s%s"
        record.args = (
            request.method,
            request.path,
            status,
            user_id,
            f" reason={reason!r}" if reason else "",
        )
        record.exc_info = None
        record.exc_text = None
        return True


class CredentialsHiddenInAccessLog(logging.Filter):
    """uvicorn's access log line holds the request's query as it came: a client that put a
    key in ``?key=`` (Google's own way) would have it written to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path with query, HTTP version, status).
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], hide_credentials(args[2]), *args[3:])
        return True
