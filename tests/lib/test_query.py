from urllib.parse import parse_qsl, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from lib.query import CREDENTIAL_PARAMETERS, HIDDEN, hide_credentials

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
