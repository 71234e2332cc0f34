"""Your data in the account settings: the export of everything, and deleting the account."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.errors import ApplicationError
from privacy import erasure, selectors, services
from privacy.access import get_data_export_for_user
from privacy.forms import AccountDeleteForm

# --- your data ---------------------------------------------------------------------------------


def export_context(request: AuthenticatedHttpRequest) -> dict:
    exports = selectors.data_exports_for_user(user=request.user)
    active = selectors.data_export_active_job(user=request.user)
    return {
        "exports": exports,
        "active_job": active,
        "ready": next((e for e in exports if e.is_downloadable), None),
        "latest": exports[0] if exports else None,
        "ttl_days": services.EXPORT_TTL.days,
    }


@login_required
@require_GET
def settings_data(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = {**export_context(request), "settings_section": "data"}
    return render(request, "privacy/data.html", context)


@login_required
@require_GET
def settings_data_status(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The export card alone: htmx polls it while an export is being built."""
    return render(request, "privacy/_data_export.html", export_context(request))


@login_required
@require_POST
def settings_data_export(request: AuthenticatedHttpRequest) -> HttpResponse:
    services.data_export_start(user=request.user, request=request)
    if request.htmx:
        return render(request, "privacy/_data_export.html", export_context(request))
    messages.info(request, "Your export is being prepared. It appears here, ready to download, in a moment.")
    return redirect("settings_data")


@login_required
@require_GET
def settings_data_download(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse | FileResponse:
    export = get_data_export_for_user(request.user, job_id)
    try:
        return services.data_export_response(export=export)
    except ApplicationError as exc:
        messages.warning(request, exc.message)
        return redirect("settings_data")


# --- deleting the account ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def settings_delete(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = AccountDeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            erasure.account_delete(user=request.user, password=form.cleaned_data["password"])
        except ApplicationError as exc:
            form.add_error("password" if exc.code in ("wrong_password", "rate_limited") else None, exc.message)
        else:
            logout(request)
            return redirect("account_deleted")
    context = {
        "form": form,
        "counts": selectors.account_content_counts(user=request.user),
        "confirmation_word": erasure.CONFIRMATION_WORD,
        "settings_section": "delete",
    }
    return render(request, "privacy/delete.html", context)


@require_GET
def account_deleted(request: HttpRequest) -> HttpResponse:
    # Public: by the time this page shows, the account and its session are gone.
    return render(request, "privacy/deleted.html")
