from django import template

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
