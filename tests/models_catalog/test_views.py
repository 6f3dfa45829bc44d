from decimal import Decimal

import pytest
from django.urls import reverse

from models_catalog.models import ModelConfig
from providers.models import Provider
from providers.registry import ProviderType
from providers.services import provider_save

pytestmark = pytest.mark.django_db

LIST = reverse("models:list")
ADD = reverse("models:add")


def model_data(provider_obj: Provider, **overrides):
    data = {
        "provider": str(provider_obj.pk),
        "identifier": "claude-opus-4-6",
        "display_name": "Claude Opus",
        "context_limit": "200000",
        "compression_threshold": "70",
        "enabled": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def provider_options(client, provider_obj: Provider) -> str:
    """The options fieldset as HTMX swaps it in when the form's provider changes."""
    response = client.get(
        ADD,
        {"provider": provider_obj.pk},
        headers={"HX-Request": "true", "HX-Target": "provider-options"},
    )
    return response.content.decode()


@pytest.fixture
def model(make_model):
    return make_model()


def urls_for(model):
    return [
        ("get", LIST),
        ("get", ADD),
        ("post", ADD),
        ("get", reverse("models:edit", args=[model.pk])),
        ("post", reverse("models:edit", args=[model.pk])),
        ("post", reverse("models:star", args=[model.pk])),
        ("post", reverse("models:toggle", args=[model.pk])),
        ("get", reverse("models:delete", args=[model.pk])),
        ("post", reverse("models:delete", args=[model.pk])),
    ]


def test_permissions_for_every_view(client, developer, admin_user, model):
    for method, url in urls_for(model):
        client.logout()
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login/" in response.url, url
        client.force_login(developer)
        assert getattr(client, method)(url).status_code == 403, url
    assert ModelConfig.objects.get() == model and not model.is_default
    client.force_login(admin_user)
    for method, url in urls_for(model):
        if method == "get":
            assert client.get(url).status_code == 200, url


def test_unknown_models_are_404(staff_client):
    for name in ("edit", "star", "toggle", "delete"):
        assert staff_client.post(reverse(f"models:{name}", args=[999])).status_code == 404


def test_empty_state_without_providers_links_to_the_providers_tab(staff_client):
    content = staff_client.get(LIST).content.decode()
    assert "No providers configured yet." in content
    assert f'href="{reverse("providers:list")}"' in content


def test_empty_state_without_models(staff_client, make_provider):
    make_provider()
    content = staff_client.get(LIST).content.decode()
    assert "No models yet." in content and f'href="{ADD}"' in content


def test_models_are_grouped_by_provider_with_the_disabled_provider_greyed(staff_client, make_model):
    make_model("claude", "anthropic", input_price="3", output_price="15")
    make_model("gpt", "openai")
    provider_save(provider_type="openai", actor=None, changes={"enabled": False})
    content = staff_client.get(LIST).content.decode()
    assert content.index('id="group-anthropic"') < content.index('id="group-openai"')
    assert '<section class="model-group disabled" aria-labelledby="group-openai">' in content
    assert "Provider disabled" in content
    assert "$3 in · $15 out per 1M" in content


def test_500_models_across_8_providers_render_in_a_constant_number_of_queries(
    staff_client, make_provider, django_assert_max_num_queries
):
    providers = [make_provider(t.value) for t in ProviderType]
    ModelConfig.objects.bulk_create(
        ModelConfig(
            provider=providers[i % 8],
            identifier=f"model-{i}",
            display_name=f"Model {i}",
            context_limit=1000 + i,
        )
        for i in range(500)
    )
    with django_assert_max_num_queries(10):
        response = staff_client.get(LIST)
    assert response.content.count(b"aria-pressed=") == 500


def test_add_asks_for_a_provider_then_shows_its_options(staff_client, make_provider):
    anthropic = make_provider("anthropic")
    content = staff_client.get(ADD).content.decode()
    assert "Choose a provider to see its options." in content
    content = staff_client.get(ADD, {"provider": anthropic.pk}).content.decode()
    assert "Thinking budget tokens" in content and "Anthropic options" in content


def test_switching_the_provider_swaps_only_the_options_fieldset(staff_client, make_provider):
    make_provider("anthropic")
    openai = make_provider("openai")
    content = provider_options(staff_client, openai).strip()
    assert content.startswith('<fieldset id="provider-options">')
    assert "Reasoning effort" in content and "Thinking budget" not in content
    assert 'name="identifier"' not in content


@pytest.mark.parametrize("provider_type", ["anthropic", "aws-bedrock"])
def test_the_one_hour_cache_write_price_is_asked_for_where_the_api_reports_it(
    staff_client, make_provider, provider_type
):
    """Only the Anthropic API (and Bedrock, which speaks it) splits cache writes by how long
    they are kept: its models are asked for the one-hour price among their provider options,
    other providers' models are not asked at all."""
    provider = make_provider(provider_type)
    openai = make_provider("openai")
    options = provider_options(staff_client, provider)
    assert options.strip().startswith('<fieldset id="provider-options">')
    assert 'name="cache_write_1h_price"' in options and "Cache write price, 1 hour" in options
    page = staff_client.get(ADD, {"provider": openai.pk}).content.decode()
    assert "cache_write_1h_price" not in page and 'name="cache_write_price"' in page

    staff_client.post(ADD, model_data(provider, cache_write_1h_price="6", input_price="3"))
    model = ModelConfig.objects.get()
    assert str(model.cache_write_1h_price) == "6.000000"
    edit = reverse("models:edit", args=[model.pk])
    assert 'name="cache_write_1h_price" value="6"' in staff_client.get(edit).content.decode()
    # Moved to a provider whose API has no such writes: the price goes with the field.
    staff_client.post(edit, model_data(openai, input_price="3"))
    model.refresh_from_db()
    assert model.provider == openai and model.cache_write_1h_price is None


def test_fast_mode_and_us_inference_factors_are_asked_for_anthropic_models_only(
    staff_client, make_provider
):
    """Only Anthropic's API says how fast (speed) and where (inference_geo) a call ran: its
    models are asked for a factor for fast mode and one for US-only inference; OpenAI's and
    Bedrock's are not, and a model moved away loses them."""
    anthropic = make_provider("anthropic")
    openai = make_provider("openai")
    options = provider_options(staff_client, anthropic)
    names = ("us_inference_price_factor", "fast_mode_price_factor")
    assert all(f'name="{name}"' in options for name in names)
    assert "US-only inference price factor" in options and "Fast mode price factor" in options
    for other in (openai, make_provider("aws-bedrock", region="us-east-1")):
        other_options = provider_options(staff_client, other)
        assert not any(name in other_options for name in names)
    factors = {"us_inference_price_factor": "1.1", "fast_mode_price_factor": "6"}
    assert staff_client.post(ADD, model_data(anthropic, **factors)).status_code == 302
    model = ModelConfig.objects.get()
    assert (model.us_inference_price_factor, model.fast_mode_price_factor) == (Decimal("1.1"), 6)
    staff_client.post(reverse("models:edit", args=[model.pk]), model_data(openai, **factors))
    model.refresh_from_db()
    assert model.provider == openai
    assert model.us_inference_price_factor is None and model.fast_mode_price_factor is None


def test_service_tier_price_factors_are_asked_for_openai_and_gemini_models_only(
    staff_client, make_provider
):
    """Only OpenAI's and Gemini's APIs say which service tier (flex, priority; OpenAI's
    ultrafast too) a call ran on: their models are asked for a factor for each among their
    provider options; others are not, and a model moved away loses them."""
    openai = make_provider("openai")
    anthropic = make_provider("anthropic")
    gemini = provider_options(staff_client, make_provider("google"))
    assert 'name="flex_price_factor"' in gemini and 'name="priority_price_factor"' in gemini
    assert "ultrafast_price_factor" not in gemini
    options = provider_options(staff_client, openai)
    assert 'name="flex_price_factor"' in options and 'name="priority_price_factor"' in options
    assert 'name="ultrafast_price_factor"' in options
    assert "Priority price factor" in options and "Ultrafast price factor" in options
    page = staff_client.get(ADD, {"provider": anthropic.pk}).content.decode()
    assert "flex_price_factor" not in page and "priority_price_factor" not in page
    assert "ultrafast_price_factor" not in page

    factors = {"flex_price_factor": "0.5", "priority_price_factor": "2"}
    assert staff_client.post(ADD, model_data(openai, **factors)).status_code == 302
    model = ModelConfig.objects.get()
    assert (model.flex_price_factor, model.priority_price_factor) == (Decimal("0.5"), 2)
    edit = reverse("models:edit", args=[model.pk])
    assert 'name="priority_price_factor" value="2"' in staff_client.get(edit).content.decode()
    staff_client.post(edit, model_data(anthropic, **factors))
    model.refresh_from_db()
    assert model.provider == anthropic
    assert model.flex_price_factor is None and model.priority_price_factor is None


def test_adding_a_model_saves_general_and_provider_options(staff_client, make_provider):
    openai = make_provider("openai")
    response = staff_client.post(
        ADD,
        model_data(
            openai,
            identifier="gpt-5",
            display_name="GPT-5",
            temperature="0.2",
            input_price="1.25",
            option_reasoning_effort="HIGH",
            option_parallel_tool_calls="false",
        ),
    )
    assert response.status_code == 302 and response.url == LIST
    model = ModelConfig.objects.get()
    assert model.options == {"reasoning_effort": "high", "parallel_tool_calls": False}
    assert (model.temperature, str(model.input_price)) == (0.2, "1.250000")
    assert b"GPT-5 saved." in staff_client.get(LIST).content


def test_editing_shows_stored_options_and_blank_means_unset(staff_client, make_model):
    model = make_model(options={"effort": "max", "thinking_budget_tokens": 1024})
    content = staff_client.get(reverse("models:edit", args=[model.pk])).content.decode()
    assert '<option value="max" selected>' in content
    assert 'value="1024"' in content
    staff_client.post(
        reverse("models:edit", args=[model.pk]), model_data(model.provider, option_effort="low")
    )
    model.refresh_from_db()
    assert model.options == {"effort": "low"}


BAD_INPUT = [
    ({"identifier": ""}, "identifier", "This field is required."),
    ({"identifier": "x" * 300}, "identifier", "at most 255 characters"),
    ({"display_name": ""}, "display_name", "This field is required."),
    ({"context_limit": ""}, "context_limit", "This field is required."),
    ({"context_limit": "0"}, "context_limit", "Context limit must be at least 1."),
    ({"context_limit": "abc"}, "context_limit", "Enter a whole number."),
    ({"compression_threshold": "101"}, "compression_threshold", "at most 100"),
    ({"max_output_tokens": "-5"}, "max_output_tokens", "Max output tokens must be at least 1."),
    ({"context_limit": "9" * 25}, "context_limit", "Context limit must be at most 100000000."),
    ({"max_output_tokens": "0"}, "max_output_tokens", "Max output tokens must be at least 1."),
    ({"temperature": "2.5"}, "temperature", "Temperature must be at most 2."),
    ({"temperature": "hot"}, "temperature", "Enter a number."),
    ({"top_p": "1.1"}, "top_p", "Top P must be at most 1."),
    ({"top_k": "0"}, "top_k", "Top K must be at least 1."),
    ({"presence_penalty": "-2.1"}, "presence_penalty", "at least -2"),
    ({"frequency_penalty": "9"}, "frequency_penalty", "at most 2"),
    ({"input_price": "-1"}, "input_price", "Input price must be at least 0."),
    ({"output_price": "1e400"}, "output_price", "Output price must be at most 1000000."),
    ({"cache_read_price": "0.0000001"}, "cache_read_price", "decimal places"),
    ({"cache_write_price": "cheap"}, "cache_write_price", "Enter a number."),
    ({"cache_write_1h_price": "-0.5"}, "cache_write_1h_price", "1 hour must be at least 0."),
    ({"web_search_price": "-10"}, "web_search_price", "Web search price must be at least 0."),
    ({"web_search_price": "ten"}, "web_search_price", "Enter a number."),
    ({"long_context_threshold": "0"}, "long_context_threshold", "must be at least 1."),
    (
        {"long_context_input_price": "6", "long_context_output_price": "22.5"},
        "long_context_threshold",
        "Enter the prompt size above which the long-context prices apply",
    ),
    (
        {"long_context_threshold": "200000", "long_context_input_price": "6"},
        "long_context_output_price",
        "Enter the long-context output price too, or clear the threshold.",
    ),
    ({"provider": "999"}, "provider", "Select a valid choice"),
    ({"provider": "abc"}, "provider", "Select a valid choice"),
    ({"option_effort": "ultra"}, "option_effort", "Effort must be one of low, medium"),
    ({"option_thinking_budget_tokens": "0"}, "option_thinking_budget_tokens", "at least 1"),
    ({"option_thinking_budget_tokens": "1.5"}, "option_thinking_budget_tokens", "whole number"),
]


@pytest.mark.parametrize("overrides, field, message", BAD_INPUT)
def test_bad_input_on_every_field_shows_a_message_next_to_it(
    staff_client, make_provider, overrides, field, message
):
    provider = make_provider("anthropic")
    response = staff_client.post(ADD, model_data(provider, **overrides))
    assert response.status_code == 422
    errors = response.context["form"].errors[field]
    assert len(errors) == 1 and message in errors[0], errors  # one message per rule
    assert 'class="field-errors"' in response.content.decode()
    assert not ModelConfig.objects.exists()


def test_a_duplicate_identifier_is_refused_next_to_the_form(staff_client, make_model):
    model = make_model("dup")
    response = staff_client.post(ADD, model_data(model.provider, identifier="dup"))
    assert response.status_code == 422
    assert "already has a model with this identifier" in response.content.decode()


def test_the_star_sets_and_moves_the_default_in_one_click(staff_client, make_model):
    a, b = make_model("a-model"), make_model("b-model")
    response = staff_client.post(
        reverse("models:star", args=[a.pk]), headers={"HX-Request": "true"}
    )
    content = response.content.decode()
    assert content.strip().startswith('<div id="model-list">')
    assert "is now the default model." in content
    staff_client.post(reverse("models:star", args=[b.pk]))
    assert list(ModelConfig.objects.filter(is_default=True)) == [b]
    staff_client.post(reverse("models:star", args=[b.pk]))
    assert not ModelConfig.objects.filter(is_default=True).exists()


def test_a_disabled_model_cannot_be_starred(staff_client, make_model):
    a = make_model("a-model", enabled=False)
    response = staff_client.post(reverse("models:star", args=[a.pk]), follow=True)
    assert b"cannot be the default: it is disabled. Enable it first." in response.content
    assert not ModelConfig.objects.filter(is_default=True).exists()


def test_disabling_the_default_says_where_the_star_went(staff_client, make_model):
    a = make_model("a-model", display_name="Alpha")
    make_model("b-model", display_name="Bravo")
    staff_client.post(reverse("models:star", args=[a.pk]))
    response = staff_client.post(
        reverse("models:toggle", args=[a.pk]), {"enabled": "false"}, headers={"HX-Request": "true"}
    )
    assert "Alpha was the default model; the default is now Bravo." in response.content.decode()


def test_delete_confirms_then_deletes_and_says_where_the_star_went(staff_client, make_model):
    a = make_model("a-model", display_name="Alpha")
    staff_client.post(reverse("models:star", args=[a.pk]))
    confirm = staff_client.get(reverse("models:delete", args=[a.pk])).content.decode()
    assert "It is the default model" in confirm
    response = staff_client.post(reverse("models:delete", args=[a.pk]), follow=True)
    assert "there is no default model now." in response.content.decode()
    assert not ModelConfig.objects.exists()


def test_the_django_admin_edits_models_with_the_schema_form(staff_client, make_model):
    model = make_model(options={"effort": "high"})
    url = f"/django-admin/models_catalog/modelconfig/{model.pk}/change/"
    content = staff_client.get(url).content.decode()
    assert 'name="option_effort"' in content and 'name="option_thinking_budget_tokens"' in content
    bad = staff_client.post(url, model_data(model.provider, option_effort="ultra"))
    assert "Effort must be one of" in bad.content.decode()
    assert 'name="cache_write_1h_price"' in content
    staff_client.post(
        url, model_data(model.provider, option_effort="low", cache_write_1h_price="6")
    )
    model.refresh_from_db()
    assert model.options == {"effort": "low"}
    assert model.cache_write_1h_price == 6


def test_a_duplicate_identifier_is_reported_at_the_identifier_field(staff_client, make_model):
    model = make_model("dup")
    response = staff_client.post(ADD, model_data(model.provider, identifier="dup"))
    form = response.context["form"]
    assert form.errors["identifier"] == ["This provider already has a model with this identifier."]
    assert not form.non_field_errors()
    assert 'aria-invalid="true"' in response.content.decode()


def test_long_context_prices_are_saved_with_their_threshold(staff_client, make_provider):
    provider = make_provider("google")
    long_context = {
        "long_context_threshold": "200000",
        "long_context_input_price": "2.5",
        "long_context_output_price": "15",
    }
    response = staff_client.post(
        ADD, model_data(provider, identifier="gemini-2.5-pro", input_price="1.25", **long_context)
    )
    assert response.status_code == 302
    model = ModelConfig.objects.get()
    assert model.long_context_threshold == 200_000
    assert (model.long_context_input_price, model.long_context_output_price) == (2.5, 15)
    content = staff_client.get(reverse("models:edit", args=[model.pk])).content.decode()
    assert 'name="long_context_input_price" value="2.5"' in content


@pytest.mark.parametrize("provider_type", ["anthropic", "openai", "google", "openrouter"])
def test_a_web_search_price_is_asked_for_and_saved_for_every_provider_type(
    staff_client, make_provider, provider_type
):
    """Searches are billed per search wherever a model runs them; the price sits with the
    general prices, for every provider type."""
    provider = make_provider(provider_type)
    form = staff_client.get(ADD, {"provider": provider.pk}).content.decode()
    assert 'name="web_search_price"' in form
    response = staff_client.post(ADD, model_data(provider, web_search_price="10"))
    assert response.status_code == 302
    model = ModelConfig.objects.get()
    assert model.web_search_price == 10
    content = staff_client.get(reverse("models:edit", args=[model.pk])).content.decode()
    assert 'name="web_search_price" value="10"' in content


def test_prices_show_as_they_were_entered(staff_client, make_model):
    model = make_model("claude", "anthropic", input_price="15", output_price="0.25")
    content = staff_client.get(reverse("models:edit", args=[model.pk])).content.decode()
    assert 'name="input_price" value="15"' in content
    assert 'name="output_price" value="0.25"' in content
    assert "15.000000" not in content and "0.250000" not in content


def test_an_alias_is_added_on_the_models_tab_and_shown_with_its_model(staff_client, make_model):
    model = make_model("claude-sonnet-4-5")
    for headers in ({}, {"HX-Request": "true"}):
        response = staff_client.post(
            reverse("models:alias-add"),
            {"pattern": "claude-opus-*", "model": model.pk},
            headers=headers,
        )
        assert response.status_code in (200, 302)
    page = staff_client.get(reverse("models:list")).content.decode()
    assert "claude-opus-*" in page and "Names callers ask for" in page
    from models_catalog.models import ModelAlias

    [alias] = ModelAlias.objects.all()
    assert (alias.pattern, alias.model_id, alias.provider_id) == (
        "claude-opus-*",
        model.pk,
        model.provider_id,
    )
    removed = staff_client.post(
        reverse("models:alias-remove", args=[alias.pk]), headers={"HX-Request": "true"}
    )
    assert removed.status_code == 200 and not ModelAlias.objects.exists()
    assert "reach no model now" in removed.content.decode()


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("", "This field is required."),
        ("*", "Give at least part of a name"),
        ("claude opus", "has no spaces"),
        ("claude-\u202eopus", "invisible text-direction character"),
        ("claude-sonnet-4-5", "has a model with this identifier"),
    ],
)
def test_a_bad_alias_is_refused_next_to_its_field_and_nothing_is_saved(
    staff_client, make_model, pattern, message
):
    from models_catalog.models import ModelAlias

    model = make_model("claude-sonnet-4-5")
    for headers, status in (({}, 422), ({"HX-Request": "true"}, 200)):
        response = staff_client.post(
            reverse("models:alias-add"), {"pattern": pattern, "model": model.pk}, headers=headers
        )
        assert response.status_code == status
        errors = response.context["alias_form"].errors["pattern"]
        assert any(message in error for error in errors), errors
    assert not ModelAlias.objects.exists()
