"""Titles for the sessions usage events point at, supplied by the app that owns sessions.

A usage row keeps a session's id, not a foreign key (the cost outlives the session), and usage
sits below the focus groups app, so that app registers how its sessions are titled when it loads.
"""

from collections.abc import Callable, Iterable

SessionTitles = Callable[..., dict[int, str]]

_resolvers: list[SessionTitles] = []


def session_titles_register(resolver: SessionTitles) -> None:
    """``resolver(user=…, ids=…)`` returns {id: title} for the user's own sessions among ``ids``."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def session_titles(*, user, ids: Iterable[int]) -> dict[int, str]:
    ids = list(ids)
    titles: dict[int, str] = {}
    if not ids:
        return titles
    for resolver in _resolvers:
        titles.update(resolver(user=user, ids=ids))
    return titles
