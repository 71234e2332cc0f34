"""CSV downloads for the back office.

Large exports stream: rows come from a server-side cursor in chunks and leave
as they are written, so memory stays flat however many rows there are. The
iterator must match the server: Django consumes a synchronous iterator into a
list before sending it under ASGI (and an asynchronous one under WSGI), which
would load the whole export into memory. So ASGI requests (daphne, the
product's server) get an async iterator and WSGI ones a sync iterator.
"""

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse

CHUNK_ROWS = 2000


class _Echo:
    """A file-like object whose write() returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _disposition(filename: str) -> str:
    return f'attachment; filename="{filename}"'


def csv_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    """A small CSV (an analytics table already in memory) as an ordinary response."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = _disposition(filename)
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


def csv_stream_response(
    request,
    *,
    filename: str,
    header: Sequence[str],
    queryset: QuerySet,
    transform: Callable[[Iterator[tuple]], Iterable[Sequence]] | None = None,
) -> StreamingHttpResponse:
    """Stream a ``values_list`` queryset as CSV, ``CHUNK_ROWS`` rows per database round trip.
    ``transform`` rewrites the rows on their way out (a label beside an id), lazily."""

    def chunks() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(header)
        batch: list[str] = []
        rows = queryset.iterator(chunk_size=CHUNK_ROWS)
        for row in transform(rows) if transform else rows:
            batch.append(writer.writerow(row))
            if len(batch) >= CHUNK_ROWS:
                yield "".join(batch)
                batch = []
        if batch:
            yield "".join(batch)

    async def async_chunks() -> AsyncIterator[str]:
        # Each step of the sync generator (query, fetch, format) runs in the request's sync
        # thread, which holds its database connection. (QuerySet.aiterator() cannot be used
        # for values_list(): it runs the query in the event loop and fails.)
        sync_chunks = chunks()
        step = sync_to_async(lambda: next(sync_chunks, None))
        while (chunk := await step()) is not None:
            yield chunk

    content = async_chunks() if isinstance(request, ASGIRequest) else chunks()
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = _disposition(filename)
    return response
