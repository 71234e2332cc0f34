"""The admin's labels read as English: the audit changelist counts "2 audit entries", and every model's
plural name is the plural of its singular name."""

import pytest
from django.contrib import admin
from django.urls import reverse

from cohorta.audit.models import AuditAction
from cohorta.audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_the_audit_changelist_counts_entries(staff_client, staff_user):
    for reason in ("One", "Two"):
        audit_record(action=AuditAction.SETTINGS_CHANGE, actor=staff_user, reason=reason)
    html = staff_client.get(reverse("admin:audit_auditentry_changelist")).content.decode()
    assert "2 audit entries" in html and "2 audit log" not in html
    index = staff_client.get(reverse("admin:index")).content.decode()
    assert "Audit entries" in index


def _stem(word: str) -> str:
    """What a noun and its plural share: entr(y/ies), alias(/es), setting(s)."""
    return word[:-1] if word.endswith(("y", "s")) else word


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_model_has_a_plural_of_its_name(model):
    singular, plural = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
    assert plural.split()[:-1] == singular.split()[:-1], (singular, plural)
    assert plural.split()[-1].startswith(_stem(singular.split()[-1])), (singular, plural)
