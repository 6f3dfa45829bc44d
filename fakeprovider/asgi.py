"""``fakeprovider.asgi:application`` for uvicorn (``manage.py fake_provider``)."""

import os

from .app import FakeProvider

application = FakeProvider(chunk_delay=float(os.environ.get("FAKE_PROVIDER_CHUNK_DELAY", "0")))
