from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.access import staff_required

from .models import AuditEntry


@staff_required
def audit_list(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.all()
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "audit/audit_tab.html", {"page": page, "tab": "audit"})
