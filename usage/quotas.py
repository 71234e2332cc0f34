"""Monthly LLM-cost quotas (USD) per user, and an optional cap per focus group.

Checked before each call from the events already recorded, so concurrent
calls can overshoot only by what the calls in flight cost.
"""

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Sum

from cohorta.core.models import APP_SETTINGS_CACHE_KEY, app_settings_in, get_app_settings
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
    def no_budget(self) -> bool:
        """A budget of $0 (an admin turned AI work off for this user): used up before any spend."""
        return self.limit_usd <= 0

    @property
    def ratio(self) -> Decimal:
        if self.no_budget:
            return Decimal(1)  # nothing may be spent, so it is all spent: banner and refusal agree
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


def quota_limit(*, user) -> Decimal:
    """The user's monthly budget: their own, else the default in App settings."""
    if user.monthly_quota_usd is not None:
        return user.monthly_quota_usd
    return get_app_settings().default_monthly_quota_usd


def quota_status(*, user) -> QuotaStatus:
    return QuotaStatus(
        limit_usd=quota_limit(user=user),
        spent_usd=month_spend(user=user),
        warning_ratio=get_app_settings().quota_warning_ratio,
    )


@dataclass(frozen=True)
class _Covered:
    user_id: int
    focus_group_id: int | None
    focus_group_cap_usd: Decimal | None
    status: QuotaStatus


_covered: contextvars.ContextVar[_Covered | None] = contextvars.ContextVar("quota_covered", default=None)


@contextlib.contextmanager
def quota_covering(
    *, user, focus_group_id: int | None = None, focus_group_cap_usd: Decimal | None = None
) -> Iterator[None]:
    """One check for calls that leave together, each in its own copy of this context (a round's answers, see
    focusgroups/round_helpers.py): the first check in each copy is answered by this one instead of summing the
    month's spend again, since none of the round's calls is recorded before the others leave (eight answers
    summed it eight times at once, on the way to the provider). A later check in the same copy, a retry's, asks
    the database. When this check refuses, nothing is covered: each call refuses for itself, as it would alone."""
    try:
        status = quota_check(user=user, focus_group_id=focus_group_id, focus_group_cap_usd=focus_group_cap_usd)
    except QuotaExceeded:
        covered = None
    else:
        covered = _Covered(user.pk, focus_group_id, focus_group_cap_usd, status)
    token = _covered.set(covered)
    try:
        yield
    finally:
        _covered.reset(token)


def quota_check(*, user, focus_group_id: int | None = None, focus_group_cap_usd: Decimal | None = None) -> QuotaStatus:
    """Refuse the call (QuotaExceeded → HTTP 402) when a limit is reached; warn at the threshold."""
    covered = _covered.get()
    if covered is not None and (covered.user_id, covered.focus_group_id, covered.focus_group_cap_usd) == (
        user.pk,
        focus_group_id,
        focus_group_cap_usd,
    ):
        _covered.set(None)  # once per copy of the context: a retry checks again
        return covered.status
    status = quota_status(user=user)
    # Pages show the budget banner from this cache: written here once the threshold is crossed, so the
    # banner is up by the time a page follows a refusal or a crossing. Below it the banner shows nothing,
    # whatever the cached percentage says, so a call (hundreds a minute in a busy worker) skips the write.
    if status.warning or status.exceeded:
        cache.set(banner_cache_key(user.pk), quota_banner_payload(status), BANNER_SECONDS)
    if status.exceeded:
        if status.no_budget:
            message = "Your account has no monthly AI budget ($0.00), so AI work is off."
        else:
            message = (
                f"You have used your monthly AI budget (${status.spent_usd:.2f} of ${status.limit_usd:.2f}). "
                "AI work is paused until next month or until an admin raises your quota."
            )
        raise QuotaExceeded(message, extra={"limit_usd": str(status.limit_usd), "spent_usd": str(status.spent_usd)})
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


BANNER_SECONDS = 60


def banner_cache_key(user_id) -> str:
    return f"quota:banner:{user_id}"


def quota_banner_payload(status: QuotaStatus) -> dict:
    return {
        "percent": status.percent,
        "exceeded": status.exceeded,
        "warning": status.warning,
        "no_budget": status.no_budget,
        "limit_usd": status.limit_usd,
        "spent_usd": status.spent_usd,
    }


class BannerVary:
    """What a cached page holds of the budget banner (``READ_CACHE_PAGE_VARY``): it lives in the cache, so no table
    version would tell a page it changed. Its entries are read in the page's own round trip."""

    def cache_keys(self, request) -> list[str]:
        return [APP_SETTINGS_CACHE_KEY, banner_cache_key(request.user.pk)]

    def __call__(self, request, found: dict) -> str:
        banner = quota_banner(user=request.user, found=found)
        return repr(sorted(banner.items())) if banner else ""


banner_vary = BannerVary()


def quota_banner(*, user, found: dict | None = None) -> dict | None:
    """The budget banner every page shows from the warning threshold (80 % by default) on, at 100 %,
    and for a $0 budget; None below the threshold. Cached a minute per user (quota_check refreshes it), read
    with the app settings in one round trip (or from ``found``, the entries of ``BannerVary.cache_keys`` a cached
    page read with its versions). A cached banner made for another budget than today's (an admin changed it) is
    made again, so the change shows on the next page, not a minute later."""
    key = banner_cache_key(user.pk)
    if found is None:
        found = cache.get_many([APP_SETTINGS_CACHE_KEY, key])
    app_settings = app_settings_in(found)
    limit = user.monthly_quota_usd if user.monthly_quota_usd is not None else app_settings.default_monthly_quota_usd
    banner = found.get(key)
    if banner is None or banner["limit_usd"] != limit:
        banner = quota_banner_payload(quota_status(user=user))
        cache.set(key, banner, BANNER_SECONDS)
    return banner if banner["warning"] or banner["exceeded"] else None


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
