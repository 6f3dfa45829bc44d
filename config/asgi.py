"""The ASGI entry point: Django for pages, and the lifespan events Django does not handle.

The AI Gateway is mounted here beside Django (see gateway.asgi) once it exists.
"""

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


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await django_application(scope, receive, send)
