"""What a request carries in this project beyond Django's ``HttpRequest``, for view annotations."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """Any request: django-htmx's middleware (in every stack) sets ``request.htmx``."""

    htmx: HtmxDetails
