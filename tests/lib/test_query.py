from urllib.parse import parse_qsl, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from lib.query import CREDENTIAL_PARAMETERS, HIDDEN, hide_credentials, without_credentials

NAMES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(sorted(CREDENTIAL_PARAMETERS)).map(lambda name: name.upper()),
)


@given(st.lists(st.tuples(NAMES, st.text(min_size=1, max_size=12)), max_size=8))
def test_a_logged_target_keeps_every_parameter_but_no_credential_value(pairs):
    query = "&".join(f"{quote_plus(name)}={quote_plus(value)}" for name, value in pairs)
    logged = hide_credentials(f"/api/v2/aibridge/google/v1/models?{query}")
    path, _, logged_query = logged.partition("?")
    assert path == "/api/v2/aibridge/google/v1/models"
    assert parse_qsl(logged_query, keep_blank_values=True) == [
        (name, HIDDEN if name.lower() in CREDENTIAL_PARAMETERS else value) for name, value in pairs
    ]


def test_a_target_without_a_query_is_logged_as_it_came():
    assert hide_credentials("/healthz") == "/healthz"
    assert hide_credentials("/a?") == "/a?"
    assert hide_credentials("/a?Key=1&%6Bey=2&keys=3") == f"/a?Key={HIDDEN}&%6Bey={HIDDEN}&keys=3"


TOKEN = "llmcp_abcd1234_" + "x" * 43


@given(
    name=st.text(min_size=1, max_size=10).filter(lambda n: "=" not in n and "&" not in n),
    before=st.text(max_size=8),
    encodings=st.integers(min_value=0, max_value=2),
)
def test_a_parameter_holding_a_platform_token_is_never_forwarded_or_logged_whatever_its_name(
    name, before, encodings
):
    value = quote_plus(before) + TOKEN
    for _ in range(encodings):
        value = quote_plus(value)
    query = f"alt=sse&{quote_plus(name)}={value}&api-version=2024"
    assert without_credentials(query) == "alt=sse&api-version=2024"
    logged = hide_credentials(f"/v1/models?{query}")
    assert "abcd1234" not in logged and TOKEN not in logged
    assert logged.endswith(f"={HIDDEN}&api-version=2024")


def test_a_token_prefix_in_any_case_or_in_the_name_is_hidden():
    assert without_credentials(f"TOKEN={TOKEN.upper()}&a=1") == "a=1"
    assert without_credentials(f"{TOKEN}=1&a=1") == "a=1"
    assert without_credentials("q=llmcp&a=1") == "q=llmcp&a=1"
