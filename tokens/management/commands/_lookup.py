from django.core.management.base import CommandError

from lib.parse import parse_id
from tokens.models import ApiToken
from tokens.token_format import LOOKUP_LENGTH, TOKEN_PREFIX


def find_token(text: str) -> ApiToken:
    """A token by its list id (``12``) or its shown prefix (``llmcp_ab12cd34``, with or without
    the prefix or trailing dots). Never by the secret: that must not be typed on a command line.
    """
    value = text.strip().rstrip("…").rstrip(".")
    pk = parse_id(value)
    if pk is not None:
        token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    else:
        lookup_id = value.removeprefix(TOKEN_PREFIX)
        if len(lookup_id) > LOOKUP_LENGTH:
            raise CommandError(
                "give the token's id or its shown prefix (llmcp_xxxxxxxx), never the whole token"
            )
        token = ApiToken.objects.select_related("user").filter(lookup_id=lookup_id).first()
    if token is None:
        raise CommandError(f"no token {text!r} (see tokens_list)")
    return token
