import csv
import io
import os
import tracemalloc
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.db import connection
from django.test import AsyncRequestFactory
from django.urls import reverse
from django.utils import timezone

from tests.backoffice.conftest import make_event
from usage.models import UsageEvent, UsageSource, UsageStatus

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/usage/usageevent/"
EXPORT = "/admin/usage/usageevent/export/"


def _ids(client, query: str) -> set[int]:
    return {event.pk for event in client.get(f"{CHANGELIST}?{query}").context["cl"].result_list}


def test_events_are_read_only(staff_client, owner):
    event = make_event(user=owner)
    page = staff_client.get(reverse("admin:usage_usageevent_change", args=[event.pk]))
    assert page.status_code == 200 and 'name="cost_usd"' not in page.content.decode()
    assert (
        staff_client.post(reverse("admin:usage_usageevent_change", args=[event.pk]), {"cost_usd": 0}).status_code == 403
    )
    assert staff_client.get(reverse("admin:usage_usageevent_add")).status_code == 403
    assert (
        staff_client.post(reverse("admin:usage_usageevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    )


def test_filters(staff_client, owner, other_user):
    mine = make_event(user=owner, model="gpt-a", feature="moderator")
    theirs = make_event(user=other_user, model="gpt-b", feature="report", status=UsageStatus.ERROR)
    estimated = make_event(user=other_user, model="gpt-b", usage_source=UsageSource.ESTIMATED)
    assert _ids(staff_client, "user=owner@example.com") == {mine.pk}
    assert _ids(staff_client, f"user={other_user.pk}") == {theirs.pk, estimated.pk}
    assert _ids(staff_client, "user=example.com") == {mine.pk, theirs.pk, estimated.pk}
    assert _ids(staff_client, "model=gpt-a") == {mine.pk}
    assert _ids(staff_client, "feature=report") == {theirs.pk}
    assert _ids(staff_client, "status__exact=error") == {theirs.pk}
    assert _ids(staff_client, "usage_source__exact=estimated") == {estimated.pk}
    year = timezone.localdate().year
    assert len(_ids(staff_client, f"created_at__year={year}")) == 3


def test_the_user_filter_box_keeps_the_other_filters(staff_client, owner):
    make_event(user=owner, model="gpt-a")
    body = staff_client.get(f"{CHANGELIST}?model=gpt-a&status__exact=ok").content.decode()
    assert '<input type="hidden" name="model" value="gpt-a">' in body
    assert '<input type="hidden" name="status__exact" value="ok">' in body


def _csv_rows(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_streams_the_filtered_set(staff_client, owner, other_user):
    keep = make_event(user=owner, model="gpt-a", cost="0.125")
    make_event(user=other_user, model="gpt-b")
    make_event(user=owner, model="gpt-b")
    response = staff_client.get(f"{EXPORT}?model=gpt-a&user={owner.email}")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, *rows = _csv_rows(response)
    assert header[:4] == ["Event id", "When (UTC)", "User id", "User email"]
    assert [int(row[0]) for row in rows] == [keep.pk]
    assert rows[0][3] == "owner@example.com" and Decimal(rows[0][header.index("Cost (USD)")]) == Decimal("0.125")


def test_csv_export_names_the_feature_beside_its_id(staff_client, owner):
    make_event(user=owner, feature="conversation_decision")
    header, row = _csv_rows(staff_client.get(EXPORT))
    assert "conversation_decision" not in header and "feature" not in header  # headers are words, not columns
    assert row[header.index("Feature")] == "AI moderator decision"
    assert row[header.index("Feature id")] == "conversation_decision"
    assert len(row) == len(header)


def test_the_changelist_links_to_the_export_of_its_selection(staff_client):
    body = staff_client.get(f"{CHANGELIST}?model=gpt-a").content.decode()
    assert f'href="{EXPORT}?model=gpt-a"' in body


def test_bad_export_filters_go_back_to_the_list(staff_client):
    response = staff_client.get(f"{EXPORT}?created_at__year=notayear")
    assert response.status_code == 302


def _bulk_events(n: int, user) -> None:
    now = timezone.now()
    UsageEvent.objects.bulk_create(
        UsageEvent(
            user=user,
            created_at=now,
            feature="persona_response",
            provider="openai",
            model="gpt-bulk",
            input_tokens=1234,
            output_tokens=567,
            cost_usd=Decimal("0.00123400"),
            request_id=f"req_{i:08d}_padding_to_make_rows_longer",
        )
        for i in range(n)
    )


def _consume_measuring(iterator) -> tuple[int, int, int]:
    """Bytes and lines produced, and the peak Python memory while producing them."""
    tracemalloc.start()
    size = lines = 0
    try:
        for chunk in iterator:
            size += len(chunk)
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return size, lines, peak


def test_export_memory_stays_bounded(staff_client, owner, monkeypatch):
    monkeypatch.setattr("cohorta.admin_tools.csv_export.CHUNK_ROWS", 500)
    _bulk_events(30_000, owner)
    response = staff_client.get(EXPORT)
    size, lines, peak = _consume_measuring(response.streaming_content)
    assert lines == 30_001
    # ~6 MB of CSV went out; holding it (or all the rows) at once would peak far above 2 MB.
    assert size > 5_000_000 and peak < 2_000_000, (size, peak)


def test_export_under_asgi_streams_with_an_async_iterator(staff_user, owner):
    """Under ASGI (daphne) Django would buffer a sync iterator whole: the export must hand it an async one."""
    make_event(user=owner, model="gpt-a")
    make_event(user=owner, model="gpt-b")
    request = AsyncRequestFactory().get(EXPORT, {"model": "gpt-a"})
    request.user = staff_user
    request._messages = None
    response = admin.site._registry[UsageEvent].export_view(request)
    assert response.is_async

    async def collect():
        return b"".join([chunk async for chunk in response])

    rows = list(csv.reader(io.StringIO(async_to_sync(collect)().decode())))
    assert len(rows) == 2 and rows[1][rows[0].index("Model")] == "gpt-a"


@pytest.mark.service
@pytest.mark.slow
def test_export_of_a_million_events(staff_client, owner):
    """1,000,000 events, inserted by Postgres itself, stream out in bounded memory."""
    if connection.vendor != "postgresql":
        pytest.skip("generate_series needs Postgres")
    count = int(os.environ.get("BACKOFFICE_EXPORT_ROWS", 1_000_000))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO usage_usageevent (created_at, user_id, feature, provider, model, model_alias, input_tokens,
                cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, price_missing, usage_source, status,
                error_class, streamed, simulated, attempt, request_id)
            SELECT now() - (n || ' seconds')::interval, %s, 'persona_response', 'openai', 'gpt-bulk', 'main', 1200,
                0, 300, 0, 0.00123, false, 'reported', 'ok', '', true, false, 1, ''
            FROM generate_series(1, %s) AS n
            """,
            [owner.pk, count],
        )
    response = staff_client.get(EXPORT)
    start = peak = _rss()
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
        peak = max(peak, _rss())
    assert lines == count + 1
    # ~120 MB of CSV for a million rows; the process grows by a small, fixed amount.
    assert peak - start < 60_000_000, (size, peak - start)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_date_hierarchy_does_not_scan_every_event(staff_client, staff_user, owner):
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    first = timezone.now() - timedelta(days=70)
    make_event(user=owner, at=first)
    make_event(user=owner)
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(CHANGELIST).status_code == 200
    assert not [q for q in queries.captured_queries if "DISTINCT DATE_TRUNC" in q["sql"].upper()]
    # Every month from the first event's to the last's is offered, even a quiet one in between.
    request = RequestFactory().get(CHANGELIST)
    request.user = staff_user
    months = admin.site._registry[UsageEvent].get_queryset(request).datetimes("created_at", "month")
    expected, month = [], timezone.localtime(first).date().replace(day=1)
    while month <= timezone.localdate():
        expected.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    assert [m.date() for m in months] == expected and len(expected) >= 3


def test_the_changelist_shows_feature_labels_not_ids(staff_client, owner):
    make_event(user=owner, feature="conversation_decision", cost="0.0123")
    body = staff_client.get(CHANGELIST).content.decode()
    start = body.index('<table id="result_list"')
    results = body[start : body.index("</table>", start)]
    assert "AI moderator decision" in results and "conversation_decision" not in results
    assert ">AI moderator decision</a>" in body  # the feature filter, which keeps the id in its link only
    assert "$0.0123" in results
    event = make_event(user=owner, feature="persona_response")
    detail = staff_client.get(reverse("admin:usage_usageevent_change", args=[event.pk])).content.decode()
    assert "Persona answer" in detail and "persona_response" not in detail


def test_the_feature_filter_still_filters_by_id(staff_client, owner):
    keep = make_event(user=owner, feature="conversation_decision")
    make_event(user=owner, feature="report")
    assert _ids(staff_client, "feature=conversation_decision") == {keep.pk}
