from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from cohorta.accounts import selectors, services
from cohorta.accounts.access import get_api_token_for_user
from cohorta.accounts.forms import ApiTokenForm, ProfileForm
from cohorta.accounts.http import AuthenticatedHttpRequest


@login_required
def settings_profile(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def settings_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def settings_token_revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    token = get_api_token_for_user(request.user, token_id)
    services.api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked: requests using it now get 401.")
    return redirect("settings_tokens")
