from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing import selectors


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.ledger_for_user(user=request.user), 25).get_page(request.GET.get("page"))
    context = {
        "balance": selectors.credits_balance(user=request.user),
        "costs": selectors.credit_costs(),
        "page_obj": page,
    }
    return render(request, "billing/index.html", context)
