"""Write a local `.env` with freshly generated secrets, for a first run on one machine.

`make run` calls this once; an existing file keeps its keys. The server runs without DEBUG
(no debug pages that list the URL patterns or settings) but over plain HTTP on this machine,
so the HTTPS-only settings are turned off here, and only here.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

HEADER = "# Written by `make run` for local use. Do not commit; production sets these itself.\n"
LOCAL_HTTP = (
    "DEBUG=false\n"
    "# Served over plain HTTP on this machine: no HTTPS redirect, cookies, or HSTS.\n"
    "SECURE_SSL_REDIRECT=false\n"
    "SESSION_COOKIE_SECURE=false\n"
    "CSRF_COOKIE_SECURE=false\n"
    "SECURE_HSTS_SECONDS=0\n"
)


def render_env() -> str:
    return (
        HEADER
        + LOCAL_HTTP
        + f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        + f"LLMCP_ENCRYPTION_KEYS=local1:{Fernet.generate_key().decode()}\n"
    )


def upgrade(text: str) -> str:
    """A file an earlier `make run` wrote with DEBUG=true gets the non-debug local settings."""
    if text.startswith(HEADER) and "\nDEBUG=true\n" in text and "SECURE_SSL_REDIRECT" not in text:
        return text.replace("\nDEBUG=true\n", "\n" + LOCAL_HTTP, 1)
    return text


def main(path: str) -> int:
    target = Path(path)
    if target.exists():
        text = target.read_text()
        if (upgraded := upgrade(text)) != text:
            target.write_text(upgraded)
            print(f"Updated {target}: the local server now runs without DEBUG.")
        return 0
    target.write_text(render_env())
    target.chmod(0o600)
    print(f"Wrote {target} with a generated SECRET_KEY and encryption key.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".env"))
