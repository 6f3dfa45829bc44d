from django.apps import AppConfig


class UiConfig(AppConfig):
    """Page furniture shared by every app: form error summaries, the first-run checklist."""

    name = "ui"
