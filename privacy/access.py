"""Getting a data export for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from privacy.models import DataExport


def get_data_export_for_user(user, pk, *, for_write: bool = False) -> DataExport:
    """``pk``: an export is known by the id of the job that builds it."""
    return owned_or_404(DataExport.objects.select_related("job"), user=user, pk=pk, field="job", what="export")
