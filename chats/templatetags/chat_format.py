from django import template

register = template.Library()


@register.filter
def compact_tokens(value: int | None) -> str:
    """200000 -> "200K", 1000000 -> "1M" (context limits in the model selector)."""
    if not value:
        return ""
    for size, suffix in ((1_000_000, "M"), (1_000, "K")):
        if value >= size:
            number = value / size
            return (
                f"{number:.0f}{suffix}"
                if number >= 10 or number.is_integer()
                else (f"{number:.1f}{suffix}")
            )
    return str(value)


@register.filter
def get_item(mapping: dict, key: object) -> object:
    return mapping.get(key, "") if mapping else ""
