"""Job kinds for focus groups, registered when the modules are imported."""

from focusgroups import jobs_analysis, jobs_assets, jobs_guide  # noqa: F401
