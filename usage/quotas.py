"""Monthly LLM-cost quotas (USD) per user, and an optional cap per focus group.

Checked before each call from the events already recorded, so concurrent
calls can overshoot only by what the calls in flight cost.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Sum

from cohorta.core.models import get_app_settings
from cohorta.errors import QuotaExceeded
from cohorta.jobs.events import user_group
from cohorta.publisher import publish
from usage.models import UsageEvent
from usage.services import month_start


@dataclass(frozen=True)
class QuotaStatus:
    limit_usd: Decimal
    spent_usd: Decimal
    warning_ratio: Decimal

    @property
    def ratio(self) -> Decimal:
        if self.limit_usd <= 0:
            return Decimal(1) if self.spent_usd > 0 else Decimal(0)
        return self.spent_usd / self.limit_usd

    @property
    def percent(self) -> int:
        return min(100, int(self.ratio * 100))

    @property
    def warning(self) -> bool:
        return self.ratio >= self.warning_ratio

    @property
    def exceeded(self) -> bool:
        return self.spent_usd >= self.limit_usd

    @property
    def remaining_usd(self) -> Decimal:
        return max(Decimal(0), self.limit_usd - self.spent_usd)


def month_spend(*, user) -> Decimal:
    total = UsageEvent.objects.filter(user=user, created_at__gte=month_start()).aggregate(total=Sum("cost_usd"))
    # Databases sum decimals to different scales; fix it so amounts compare and print alike.
    return (total["total"] or Decimal(0)).quantize(Decimal("0.00000001"))


def quota_status(*, user) -> QuotaStatus:
    app = get_app_settings()
    limit = user.monthly_quota_usd if user.monthly_quota_usd is not None else app.default_monthly_quota_usd
    return QuotaStatus(limit_usd=limit, spent_usd=month_spend(user=user), warning_ratio=app.quota_warning_ratio)


def quota_check(*, user, focus_group_id: int | None = None, focus_group_cap_usd: Decimal | None = None) -> QuotaStatus:
    """Refuse the call (QuotaExceeded → HTTP 402) when a limit is reached; warn at the threshold."""
    status = quota_status(user=user)
    if status.exceeded:
        raise QuotaExceeded(
            f"You have used your monthly AI budget (${status.spent_usd:.2f} of ${status.limit_usd:.2f}). "
            "AI work is paused until next month or until an admin raises your quota.",
            extra={"limit_usd": str(status.limit_usd), "spent_usd": str(status.spent_usd)},
        )
    if focus_group_id is not None and focus_group_cap_usd is not None:
        spent = UsageEvent.objects.filter(focus_group_id=focus_group_id).aggregate(total=Sum("cost_usd"))["total"]
        if (spent or Decimal(0)) >= focus_group_cap_usd:
            raise QuotaExceeded(
                f"This focus group reached its spending cap (${focus_group_cap_usd:.2f}).",
                code="session_cap_reached",
                extra={"cap_usd": str(focus_group_cap_usd), "spent_usd": str(spent)},
            )
    if status.warning:
        _warn_once(user, status)
    return status


def _warn_once(user, status: QuotaStatus) -> None:
    """Push one websocket warning per user per month; the page banner shows it too."""
    key = f"quota:warned:{user.pk}:{month_start():%Y-%m}"
    if not cache.add(key, 1, 40 * 24 * 3600):
        return
    publish(
        user_group(user.pk),
        {
            "type": "usage.quota_warning",
            "owner_id": user.pk,
            "percent": status.percent,
            "spent_usd": str(status.spent_usd),
            "limit_usd": str(status.limit_usd),
        },
    )
