from django import template
from django.utils import timezone

from cohorta.jobs.registry import kind_label

register = template.Library()

_BADGES = {
    "pending": "text-bg-light border",
    "queued": "text-bg-secondary",
    "running": "text-bg-primary",
    "done": "text-bg-success",
    "failed": "text-bg-danger",
    "cancelled": "text-bg-dark",
    "interrupted": "text-bg-warning",
}


@register.filter
def job_label(job) -> str:
    return kind_label(job.kind)


@register.filter
def job_badge(state: str) -> str:
    return _BADGES.get(state, "text-bg-light")


@register.filter
def job_elapsed(job) -> int:
    """Whole seconds since the job started (or was created, while it waits): the page ticks on from there."""
    since = job.started_at or job.created_at
    return max(0, int((timezone.now() - since).total_seconds())) if since else 0


@register.filter
def clock(seconds) -> str:
    """``75`` → ``"1:15"``; an hour or more → ``"1:02:05"``."""
    seconds = max(0, int(seconds or 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
