from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.accounts import selectors, services
from cohorta.accounts.forms import AccountDeleteForm, ApiTokenForm, ProfileForm
from cohorta.accounts.models import ApiToken
from cohorta.errors import ApplicationError
from privacy import erasure
from privacy import selectors as privacy_selectors
from privacy import services as privacy_services


@login_required
def settings_profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Profile saved.")
        return redirect("settings_profile")
    return render(request, "accounts/profile.html", {"form": form, "settings_section": "profile"})


# Where a new token waits between the POST that made it and the one page that shows it.
_JUST_CREATED = "accounts:new_api_token"


@login_required
@never_cache  # the page may carry a raw token: no browser or proxy copy of it
def settings_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, raw = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
        # Post/redirect/get, so a refresh cannot make a second token. The raw value rides in the
        # session for exactly one display: the GET below pops it, and only the hash is kept.
        request.session[_JUST_CREATED] = {"name": token.name, "raw": raw}
        return redirect("settings_tokens")
    context = {
        "form": form,
        "tokens": selectors.api_tokens_for_user(user=request.user),
        "new_token": request.session.pop(_JUST_CREATED, None) if request.method == "GET" else None,
        "settings_section": "tokens",
    }
    return render(request, "accounts/tokens.html", context)


@login_required
@require_POST
def settings_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = ApiToken.objects.filter(user=request.user, pk=token_id).first()
    if token is None:
        raise Http404("No such token")
    services.api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked: requests using it now get 401.")
    return redirect("settings_tokens")


# --- your data ---------------------------------------------------------------------------------


def _export_context(request: HttpRequest) -> dict:
    exports = privacy_selectors.data_exports_for_user(user=request.user)
    active = privacy_selectors.data_export_active_job(user=request.user)
    return {
        "exports": exports,
        "active_job": active,
        "ready": next((e for e in exports if e.is_downloadable), None),
        "latest": exports[0] if exports else None,
        "ttl_days": privacy_services.EXPORT_TTL.days,
    }


@login_required
@require_GET
def settings_data(request: HttpRequest) -> HttpResponse:
    context = {**_export_context(request), "settings_section": "data"}
    return render(request, "accounts/data.html", context)


@login_required
@require_GET
def settings_data_status(request: HttpRequest) -> HttpResponse:
    """The export card alone: htmx polls it while an export is being built."""
    return render(request, "accounts/_data_export.html", _export_context(request))


@login_required
@require_POST
def settings_data_export(request: HttpRequest) -> HttpResponse:
    privacy_services.data_export_start(user=request.user, request=request)
    if request.htmx:
        return render(request, "accounts/_data_export.html", _export_context(request))
    messages.info(request, "Your export is being prepared. It appears here, ready to download, in a moment.")
    return redirect("settings_data")


@login_required
@require_GET
def settings_data_download(request: HttpRequest, job_id: str) -> HttpResponse:
    export = privacy_selectors.data_export_get_for_user(user=request.user, job_id=job_id)
    if export is None:
        raise Http404("No such export")
    try:
        return privacy_services.data_export_response(export=export)
    except ApplicationError as exc:
        messages.warning(request, exc.message)
        return redirect("settings_data")


# --- deleting the account ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def settings_delete(request: HttpRequest) -> HttpResponse:
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
        "counts": privacy_selectors.account_content_counts(user=request.user),
        "confirmation_word": erasure.CONFIRMATION_WORD,
        "settings_section": "delete",
    }
    return render(request, "accounts/delete.html", context)


@require_GET
def account_deleted(request: HttpRequest) -> HttpResponse:
    # Public: by the time this page shows, the account and its session are gone.
    return render(request, "accounts/deleted.html")
