"""Cohorta's settings with one extra URL: a trivial view, the ceiling bench/http_serving.py measures
every endpoint against, served by the same process and middleware as the pages."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.serving_urls"
