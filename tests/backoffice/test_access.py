"""Nobody but staff reaches the back office: not researchers, not anonymous visitors."""

import pytest
from django.urls import reverse

from backoffice.views import PAGES
from tests.backoffice.conftest import make_event

pytestmark = pytest.mark.django_db


def _admin_urls(owner) -> list[str]:
    event = make_event(user=owner)
    urls = [reverse("admin:index"), reverse("admin:usage_usageevent_export")]
    urls += [reverse(f"admin:{page.url_name}") for page in PAGES]
    urls += [reverse(f"admin:{page.url_name}") + "?export=csv" for page in PAGES]
    urls += [
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_user_change", args=[owner.pk]),
        reverse("admin:accounts_user_credits", args=[owner.pk]),
        reverse("admin:usage_usageevent_changelist"),
        reverse("admin:usage_usageevent_change", args=[event.pk]),
        reverse("admin:usage_modelprice_changelist"),
        reverse("admin:usage_modelalias_changelist"),
        reverse("admin:billing_credittransaction_changelist"),
        reverse("admin:core_appsettings_changelist"),
        reverse("admin:jobs_job_changelist"),
        reverse("admin:audit_auditentry_changelist"),
        reverse("admin:personas_persona_changelist"),
        reverse("admin:focusgroups_focusgroup_changelist"),
    ]
    return urls


@pytest.mark.parametrize("who", ["anonymous", "researcher"])
def test_every_back_office_page_sends_non_staff_to_the_admin_login(client, owner, who):
    if who == "researcher":
        client.force_login(owner)
    for url in _admin_urls(owner):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_a_researcher_cannot_post_admin_actions(client, owner, other_user):
    client.force_login(owner)
    response = client.post(
        reverse("admin:accounts_user_credits", args=[other_user.pk]),
        {"kind": "grant", "amount": 100, "reason": "free money", "token": "x"},
    )
    assert response.status_code == 302
    other_user.refresh_from_db()
    assert other_user.credit_balance == 0


@pytest.mark.parametrize("who", ["anonymous", "researcher"])
def test_staff_usage_api_refuses_non_staff(api_client, owner, owner_token, who):
    if who == "researcher":
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_token}")
    response = api_client.get("/api/v1/staff/usage/summary/?group_by=user")
    assert response.status_code == (403 if who == "researcher" else 401)
    assert "rows" not in response.json()


def test_staff_see_every_back_office_page(staff_client, owner):
    for url in _admin_urls(owner):
        assert staff_client.get(url).status_code == 200, url
