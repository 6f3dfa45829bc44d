from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tokens.services import NewToken, token_create


@pytest.fixture
def make_token(db: None) -> Callable[..., NewToken]:
    def make(user: Any, name: str = "laptop", days: int = 30) -> NewToken:
        return token_create(user=user, name=name, lifetime=timedelta(days=days), actor=user)

    return make
