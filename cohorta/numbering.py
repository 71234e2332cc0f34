"""Numbers that rows take in one statement: the next of a series (a cached answer's draw, a run's k-th call of
a request) and a block of a counter (a session's message numbers). One round trip each, on Postgres and SQLite
alike (both speak INSERT … ON CONFLICT and RETURNING)."""

from django.db import connection

# One statement numbers a row and inserts it (INSERT … SELECT max + 1 … ON CONFLICT DO NOTHING): a request seen
# before costs no count and no failed INSERT. Two processes numbering the same request at the same moment take
# the same number; the second finds the conflict (after the first commits), inserts nothing and tries again with
# the number now taken. A survey asking everyone the same question, or fifty identical sessions of a benchmark,
# clashed on nearly every row with an INSERT-then-count under a savepoint, which cost more CPU than the answer.
_NUMBERING_TRIES = 50


def insert_numbered(model, number_field: str, *, among: dict, values: dict) -> tuple[int, int]:
    """Insert ``values`` as a row of ``model`` whose ``number_field`` is one past the highest of the rows
    matching ``among`` (0 for the first), so numbers stay consecutive. Returns (pk, number)."""
    meta = model._meta
    ops = connection.ops
    table = ops.quote_name(meta.db_table)
    number_column = ops.quote_name(meta.get_field(number_field).column)
    pk_column = ops.quote_name(meta.pk.column)
    row = {**among, **values}
    columns, selected, params = [], [], []
    for name, value in row.items():
        model_field = meta.get_field(name)
        columns.append(ops.quote_name(model_field.column))
        # Typed, since a SELECT list's bare parameter (NULL above all) has no column type to take.
        selected.append(f"CAST(%s AS {model_field.cast_db_type(connection)})")
        params.append(model_field.get_db_prep_save(value, connection))
    conditions, condition_params = [], []
    for name, value in among.items():
        model_field = meta.get_field(name)
        conditions.append(f"{ops.quote_name(model_field.column)} = %s")
        condition_params.append(model_field.get_db_prep_value(value, connection))
    # Only names from the model's own metadata, quoted, go into the text; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}, {number_column}) "  # noqa: S608
        f"SELECT {', '.join(selected)}, COALESCE(MAX({number_column}) + 1, 0) FROM {table} "
        f"WHERE {' AND '.join(conditions)} "
        f"ON CONFLICT DO NOTHING RETURNING {pk_column}, {number_column}"
    )
    with connection.cursor() as cursor:
        for _ in range(_NUMBERING_TRIES):
            cursor.execute(sql, [*params, *condition_params])
            inserted = cursor.fetchone()
            if inserted is not None:
                return inserted[0], inserted[1]
    raise RuntimeError(f"Could not number a row of {meta.label}")  # pragma: no cover


def counter_add(model, counter_field: str, *, pk, count: int) -> int:
    """Add ``count`` to a row's counter and return its new value: UPDATE … RETURNING, one round trip instead of
    an UPDATE and a read back. Inside a transaction the row stays locked until commit, so concurrent callers
    get distinct, gap-free blocks."""
    meta = model._meta
    quote = connection.ops.quote_name
    column = quote(meta.get_field(counter_field).column)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {column} = {column} + %s "  # noqa: S608 (quoted names, values as parameters)
        f"WHERE {quote(meta.pk.column)} = %s RETURNING {column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"No {meta.label} {pk} to count on")
    return row[0]
