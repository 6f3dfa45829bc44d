# The gateway's fixtures: budgets are tried on its calls.
from tests.gateway.conftest import deployment, fake, fake_provider, gateway_server  # noqa: F401
