from celery import shared_task

from cohorta.core.models import get_app_settings
from llm.replay import cache_expire


@shared_task(name="llm.tasks.expire_cache")
def expire_cache() -> int:
    """Cached AI answers past the admin's keep-for days are deleted (runs keep their ledger)."""
    return cache_expire(days=get_app_settings().llm_cache_days)
