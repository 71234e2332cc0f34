"""Getting a panel or an uploaded target for a user: not theirs → 404 (see ``cohorta/access.py``)."""

from cohorta.access import owned_or_404
from panels.models import MicrodataFile, Panel, PopulationFile


def get_panel_for_user(user, pk, *, for_write: bool = False) -> Panel:
    return owned_or_404(Panel.objects.select_related("job", "folder"), user=user, pk=pk, what="panel")


def get_population_file_for_user(user, pk, *, for_write: bool = False) -> PopulationFile:
    return owned_or_404(PopulationFile.objects.all(), user=user, pk=pk, what="population")


def get_microdata_file_for_user(user, pk, *, for_write: bool = False) -> MicrodataFile:
    return owned_or_404(MicrodataFile.objects.all(), user=user, pk=pk, what="microdata file")
