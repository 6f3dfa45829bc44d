"""The ASGI entry point: the AI Gateway beside Django, in one process.

Paths under the gateway's prefix go to the raw ASGI gateway app (gateway.app); everything
else to Django. Lifespan events (which Django does not handle) start nothing eagerly and,
at shutdown, write the queued usage rows and close the gateway's connections.
"""

import logging
import os
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

try:
    from django.core.asgi import get_asgi_application

    django_application = get_asgi_application()
except ImproperlyConfigured as error:
    # Refuse to start, in one line that says what to set.
    sys.stderr.write(f"Configuration error: {error}\n")
    raise SystemExit(1) from None

from gateway import lifecycle
from gateway.app import IDENTITY_SCOPE_KEY, refuse_websocket
from gateway.app import application as gateway_application
from lib.logging import CredentialsHiddenInAccessLog
from routing.deployment import GATEWAY_PREFIX

PREFIX = GATEWAY_PREFIX + "/"
# On the logger, not a handler: it holds however uvicorn was started and its logging set up.
logging.getLogger("uvicorn.access").addFilter(CredentialsHiddenInAccessLog())


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                lifecycle.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await lifecycle.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
    # Only the in-process transport may name an identity; never a connection from outside.
    scope.pop(IDENTITY_SCOPE_KEY, None)
    if scope["path"].startswith(PREFIX):
        await gateway_application(scope, receive, send)
    elif scope["type"] == "websocket":
        # No page takes a WebSocket; Django would fail on one (a 500 and a traceback).
        await refuse_websocket(scope, receive, send)
    else:
        await django_application(scope, receive, send)
