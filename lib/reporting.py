from typing import Any

from django.views.debug import SafeExceptionReporterFilter


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Error reports (the DEBUG page, mailed reports) never show a posted key, on any view.

    Views mark ``api_key`` with ``sensitive_post_parameters`` as well; this also covers views
    we do not write, such as the Django admin's.
    """

    hidden_post_parameters = ("api_key", "password", "password1", "password2")

    def get_post_parameters(self, request: Any) -> Any:
        params = super().get_post_parameters(request)
        if request is None or not params:
            return params
        params = params.copy()
        for name in self.hidden_post_parameters:
            if name in params:
                params[name] = self.cleansed_substitute
        return params
