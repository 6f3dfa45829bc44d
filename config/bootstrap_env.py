"""Write a local `.env` with freshly generated secrets, for a first run on one machine.

`make run` calls this once; an existing file is never touched, so keys stay stable.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def render_env() -> str:
    return (
        "# Written by `make run` for local use. Do not commit; production sets these itself.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"LLMCP_ENCRYPTION_KEYS=local1:{Fernet.generate_key().decode()}\n"
    )


def main(path: str) -> int:
    target = Path(path)
    if target.exists():
        return 0
    target.write_text(render_env())
    target.chmod(0o600)
    print(f"Wrote {target} with a generated SECRET_KEY and encryption key.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".env"))
