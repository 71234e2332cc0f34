"""The one shape of ownership checks.

Every app that has objects a user owns gives ``<app>/access.py`` with, per object,
``get_<object>_for_user(user, pk, *, for_write=False)`` (plus the parent's id, keyword-only, for an
object inside another). It returns the object, or raises ``Http404`` when the object does not exist,
is someone else's or the id is malformed: a stranger cannot tell the three apart. ``for_write=True``
also refuses (409, with the reason) an object that exists but takes no changes, such as an archived
session. Views, API views and websocket consumers get objects only through these functions; none
filters by owner itself.
"""

from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Field, Model, QuerySet
from django.http import Http404

M = TypeVar("M", bound=Model)


def pk_or_404(model: type[Model], value, *, field: str = "pk"):
    """``value`` (from a URL or a payload) as ``model``'s primary key (or its ``field``); one it cannot be
    is a 404."""
    model_field = model._meta.pk if field == "pk" else model._meta.get_field(field)
    if not isinstance(model_field, Field):
        raise TypeError(f"{model.__name__}.{field} is not a concrete field")  # a caller's mistake, not a 404
    try:
        pk = model_field.to_python(value)
    except (ValidationError, TypeError, ValueError):
        raise Http404("Not found") from None
    if pk is None or (isinstance(pk, int) and pk <= 0):
        raise Http404("Not found")
    return pk


def owned_or_404(
    queryset: QuerySet[M], *, user, pk, owner_field: str = "owner", field: str = "pk", what: str = "object"
) -> M:
    """The object with ``pk`` in ``queryset`` whose ``owner_field`` is ``user``, else ``Http404``.

    ``field``: the unique field the id is for, when it is not the primary key. An anonymous user owns
    nothing, nor does an account deactivated since it signed in (checked in the database: a websocket
    re-checks with the user it connected as)."""
    if user is None or not getattr(user, "is_authenticated", False):
        raise Http404(f"No such {what}")
    found = queryset.filter(
        **{owner_field: user, f"{owner_field}__is_active": True, field: pk_or_404(queryset.model, pk, field=field)}
    ).first()
    if found is None:
        raise Http404(f"No such {what}")
    return found
