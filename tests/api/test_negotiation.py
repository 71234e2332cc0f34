"""The API's content negotiation: its shortcut for clients that take anything answers as DRF's would."""

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from cohorta.api.negotiation import ContentNegotiation

ACCEPTS = [
    None,
    "*/*",
    " */* ",
    "application/json",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/json; indent=4",
    "*/*; q=0.5",
    "image/png",
]


def _request(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get(f"/api/v1/personas/{query}", **headers))


def _choice(negotiation, request, renderers, suffix=None):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except Exception as exc:  # NotAcceptable, Http404: the same refusal from both
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("renderer_classes", [[JSONRenderer], [JSONRenderer, BrowsableAPIRenderer]])
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?page=2", "?format=json", "?format=api", "?format=xml"])
def test_the_shortcut_chooses_what_drf_chooses(renderer_classes, accept, query):
    renderers = [cls() for cls in renderer_classes]
    ours = _choice(ContentNegotiation(), _request(accept, query), renderers)
    drf = _choice(DefaultContentNegotiation(), _request(accept, query), renderers)
    assert ours == drf


@pytest.mark.parametrize("suffix", [None, "json", "api"])
def test_a_format_suffix_is_honoured_as_drf_honours_it(suffix):
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    ours = _choice(ContentNegotiation(), _request("*/*"), renderers, suffix)
    assert ours == _choice(DefaultContentNegotiation(), _request("*/*"), renderers, suffix)


def test_a_client_that_takes_anything_is_answered_without_parsing_its_header(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("parsed the Accept header")

    monkeypatch.setattr(DefaultContentNegotiation, "_get_parsed_accept_list", refuse)
    renderer, media_type = ContentNegotiation().select_renderer(_request(None), [JSONRenderer()])
    assert (type(renderer), media_type) == (JSONRenderer, "application/json")
    with pytest.raises(AssertionError):
        ContentNegotiation().select_renderer(_request("text/html"), [JSONRenderer()])


@pytest.mark.django_db
def test_the_api_uses_it_and_still_refuses_what_it_cannot_render(client, django_user_model):
    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is ContentNegotiation
    user = django_user_model.objects.create_user("neg@example.com", "Correct-Horse-Battery-9")
    client.force_login(user)
    assert client.get("/api/v1/personas/").status_code == 200
    assert client.get("/api/v1/personas/", HTTP_ACCEPT="*/*").status_code == 200
    assert client.get("/api/v1/personas/", HTTP_ACCEPT="image/png").status_code == 406
