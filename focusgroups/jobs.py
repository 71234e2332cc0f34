"""Job kinds for focus groups, registered when the modules are imported (each feature keeps its own)."""

from focusgroups.assets import jobs as asset_jobs  # noqa: F401
from focusgroups.guide import jobs as guide_jobs  # noqa: F401
from focusgroups.quality import judge as quality_jobs  # noqa: F401
from focusgroups.report import jobs as report_jobs  # noqa: F401
