"""A normal session leaves nothing alarming in the server's log: an admin and a developer
chat, leave a page while its reply streams, and download the usage and audit CSVs, on the
real server (uvicorn, ASGI); then the log has no warning, no traceback, and none of the
lines asyncio and Django write for a task left pending or a response read whole first."""

import pytest

from fakeprovider.server import running_fake_provider
from models_catalog.services import model_save, model_set_default
from providers.services import provider_save
from tests import servers

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_normal_session_leaves_no_warning_in_the_server_log(browser, admin_user, developer):
    with running_fake_provider(chunk_delay=0.1) as (_, url):
        provider = provider_save(
            provider_type="openai-compatible",
            actor=None,
            changes={"base_url": url + "/v1"},
            api_key="sk-fake",
        )
        model, _ = model_save(
            model=None,
            provider=provider,
            options={},
            actor=None,
            fields={"identifier": "fake-gpt", "display_name": "Fake GPT", "context_limit": 128_000},
        )
        model_set_default(model=model, actor=None)
        with servers.served_app(workers=1) as base:
            context = browser.new_context(base_url=base)
            context.set_default_timeout(15_000)
            page = context.new_page()
            sign_in(page, "dev")
            page.goto("/agents/")
            page.get_by_label("Message").fill("A long one to leave [[fake: chunks=60]]")
            page.get_by_role("button", name="Send").click()
            page.wait_for_url("**/agents/chats/*/")
            page.locator("article.role-assistant").first.wait_for()
            page.goto("/settings/usage/")  # leaves the chat while its reply streams
            with page.expect_download() as usage_csv:
                page.get_by_role("link", name="Export CSV").click()
            assert usage_csv.value.suggested_filename == "usage-dev.csv"
            context.close()

            admin = browser.new_context(base_url=base).new_page()
            sign_in(admin, "alice")
            for address in ("/admin/usage/", "/admin/audit/"):
                admin.goto(address)
                with admin.expect_download() as download:
                    admin.get_by_role("link", name="Export CSV").click()
                assert download.value.path().read_text().count("\n") >= 1
            admin.context.close()
    log = servers.last_output  # this session's server's, written as it stopped
    for alarming in (
        "Task was destroyed but it is pending",
        "StreamingHttpResponse must consume",
        "Traceback",
        "WARNING",
        "ERROR",
    ):
        assert alarming not in log, log
