"""Any input to the model form, the Models tab and the model commands: an error or a valid
model, never a crash."""

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from models_catalog.forms import GENERAL_FIELDS, bound_model_form
from models_catalog.models import ModelConfig, PurposeModel
from models_catalog.options import GENERAL_OPTIONS
from models_catalog.services import model_save
from providers.registry import spec_for
from tests.properties import (
    assert_all_valid,
    numbers_as_text,
    property_settings,
    rolled_back,
    run_command,
    texts,
)

pytestmark = pytest.mark.django_db

PROVIDER_TYPE = "anthropic"
OPTION_NAMES = [spec.name for spec in spec_for(PROVIDER_TYPE).options]
FLAGS = ["--display-name", *(f"--{name.replace('_', '-')}" for name in GENERAL_OPTIONS)]
values = st.one_of(numbers_as_text, texts)


@pytest.fixture
def provider(make_provider):
    return make_provider(PROVIDER_TYPE)


@property_settings
@given(
    general=st.fixed_dictionaries({name: values for name in GENERAL_FIELDS}),
    options=st.fixed_dictionaries({f"option_{name}": values for name in OPTION_NAMES}),
)
def test_the_model_form_never_crashes_or_saves_invalid_data(provider, general, options):
    data = {"provider": str(provider.pk), **general, **options}
    with rolled_back():
        form = bound_model_form(data=data, instance=ModelConfig(), provider=provider)
        if form.is_valid():
            try:
                model_save(
                    model=None,
                    provider=provider,
                    fields=form.fields_to_save(),
                    options=form.options(),
                    actor=None,
                )
            except Exception as error:  # only a validation error may come back
                assert type(error).__name__ == "ValidationError", error
        assert_all_valid(ModelConfig.objects.all())


@property_settings
@given(
    identifier=texts,
    flag=st.sampled_from(
        ["--display-name", *(f"--{n.replace('_', '-')}" for n in GENERAL_OPTIONS)]
    ),
    value=values,
    option=st.one_of(texts, st.builds("{}={}".format, st.sampled_from(OPTION_NAMES), values)),
)
def test_model_commands_answer_in_one_line_and_save_only_valid_data(
    provider, identifier, flag, value, option
):
    with rolled_back():
        run_command("model_set", PROVIDER_TYPE, identifier, flag, value)
        run_command("model_set", PROVIDER_TYPE, "fixed-id", flag, value, "--option", option)
        run_command("model_set_default", PROVIDER_TYPE, identifier)
        run_command("model_purpose", "title", PROVIDER_TYPE, identifier)
        run_command("model_delete", PROVIDER_TYPE, identifier, "--yes")
        assert_all_valid(ModelConfig.objects.all())
        assert_all_valid(PurposeModel.objects.all())


@property_settings
@given(provider_value=values, purpose_value=values)
def test_the_models_tab_answers_any_id_without_a_500(
    staff_client, provider, make_model, provider_value, purpose_value
):
    with rolled_back():
        add = reverse("models:add")
        assert staff_client.get(add, {"provider": provider_value}).status_code in (200, 400)
        response = staff_client.post(add, {"provider": provider_value, "identifier": "x"})
        assert response.status_code in (400, 422)
        response = staff_client.post(reverse("models:purposes"), {"title": purpose_value})
        assert response.status_code in (302, 400)
