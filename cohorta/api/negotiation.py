"""Content negotiation with a shortcut for the common case."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once for a client that takes anything (no ``Accept`` header, or ``*/*``, as
    curl, requests and wrk send) and names no format: DRF would pick the first renderer with its own media type, after
    parsing the header and ranking every renderer against it, on every request, cached reads included."""

    def select_renderer(self, request, renderers, format_suffix=None):
        meta = request.META
        # A query string that may name a format (``?format=``) goes the long way: its parsing is not needed otherwise.
        may_name_format = f"{self.settings.URL_FORMAT_OVERRIDE}=" in meta.get("QUERY_STRING", "")
        if meta.get("HTTP_ACCEPT", "*/*").strip() == "*/*" and format_suffix is None and not may_name_format:
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
