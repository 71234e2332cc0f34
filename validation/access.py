"""Getting a reference survey or a validation for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from validation.models import Reference, Validation


def get_reference_for_user(user, pk, *, for_write: bool = False) -> Reference:
    return owned_or_404(Reference.objects.all(), user=user, pk=pk, what="reference survey")


def get_validation_for_user(user, pk, *, for_write: bool = False) -> Validation:
    return owned_or_404(
        Validation.objects.select_related("reference", "panel", "run", "survey"), user=user, pk=pk, what="validation"
    )
