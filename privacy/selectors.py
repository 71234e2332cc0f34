from billing.models import CreditTransaction
from cohorta.accounts.models import ApiToken
from cohorta.jobs.models import ACTIVE_STATES, Job
from focusgroups.models import Asset, FocusGroup
from personas.models import Folder, Persona
from privacy.models import DataExport
from usage.models import UsageEvent

EXPORT_KIND = "account_export"


def data_exports_for_user(*, user, limit: int = 5) -> list[DataExport]:
    return list(DataExport.objects.filter(owner=user).select_related("job").order_by("-created_at")[:limit])


def data_export_active_job(*, user) -> Job | None:
    return Job.objects.filter(owner=user, kind=EXPORT_KIND, state__in=ACTIVE_STATES).order_by("-created_at").first()


def account_content_counts(*, user) -> dict[str, int]:
    """What deleting the account removes, and what it keeps anonymised (for the confirmation page)."""

    return {
        "personas": Persona.objects.filter(owner=user).count(),
        "sessions": FocusGroup.objects.filter(owner=user).count(),
        "folders": Folder.objects.filter(owner=user).count(),
        "files": Asset.objects.filter(focus_group__owner=user).exclude(image="").count(),
        "api_tokens": ApiToken.objects.active().filter(user=user).count(),
        "ledger_entries": CreditTransaction.objects.filter(user_id=user.pk).count(),
        "usage_events": UsageEvent.objects.filter(user_id=user.pk).count(),
    }
