"""Great Expectations 1.x over DuckDB, inside DuckDB: a SQLAlchemy dialect that makes it work.

Two things break GX's SQL datasource on ``duckdb_engine`` (GX issues #10738 and #11579):

1. Empty metric results. GX executes a metric query, lets SQLAlchemy release the connection to
   its pool (which rolls the connection back) and only then fetches the rows. A DuckDB cursor's
   pending result does not survive that, so every metric comes back empty. This dialect's
   execution context fetches a query's rows as soon as it has run (SQLAlchemy's
   ``FullyBufferedCursorFetchStrategy``, made for results that must outlive the conversation).
   Metric queries return aggregates or a handful of example rows, so buffering costs nothing;
   the expectations themselves still run as SQL inside DuckDB.
2. "Regex is not supported for dialect duckdb". GX picks its SQL flavour for regex and LIKE
   expectations by asking whether ``dialect.dialect`` is a subclass of a dialect it knows (it
   expects a dialect module there, such as ``sqlalchemy.dialects.postgresql``). DuckDB speaks
   PostgreSQL's SQL (duckdb_engine's dialect derives from PostgreSQL's), so this dialect answers
   PostgreSQL's dialect class there. GX then builds PostgreSQL expressions, which this dialect's
   compiler turns into SQL: only the regex search operators ``~`` / ``!~`` differ, and are written
   as DuckDB's ``regexp_matches`` (a search, as in PostgreSQL; DuckDB's own ``~`` is a full match).

Use the URL ``duckdb+crm360:///path/to/file.duckdb`` (registered on import of this module), and the
connect argument ``search_path`` for a table asset outside ``main`` (see ``connect``).
"""

from __future__ import annotations

from typing import Any

from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql, registry
from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy

DRIVER = "crm360"
URL_SCHEME = f"duckdb+{DRIVER}"


class BufferedExecutionContext(DuckDBDialect.execution_ctx_cls):  # type: ignore[name-defined,misc]
    """Fetches a query's rows right after it runs, before the connection can be released."""

    def post_exec(self) -> None:
        super().post_exec()
        if self.cursor.description is not None:
            self.cursor_fetch_strategy = FullyBufferedCursorFetchStrategy(
                self.cursor, self.cursor.description
            )


class RegexCompiler(DuckDBDialect.statement_compiler):  # type: ignore[name-defined,misc]
    """PostgreSQL's regex search operators, written the DuckDB way."""

    _SEARCH = {"~": "", "!~": "NOT "}

    def visit_custom_op_binary(self, element: Any, operator: Any, **kw: Any) -> str:
        prefix = self._SEARCH.get(operator.opstring)
        if prefix is None:
            return super().visit_custom_op_binary(element, operator, **kw)
        left = self.process(element.left, **kw)
        right = self.process(element.right, **kw)
        return f"{prefix}regexp_matches({left}, {right})"


class GreatExpectationsDuckDBDialect(DuckDBDialect):
    driver = DRIVER
    execution_ctx_cls = BufferedExecutionContext
    statement_compiler = RegexCompiler
    supports_statement_cache = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What GX reads from ``engine.dialect.dialect`` to choose a SQL flavour (see above). Set
        # on the instance: on the class, SQLAlchemy reads ``dialect`` as the dialect to load.
        self.dialect = postgresql.dialect

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        """A DuckDB connection; ``search_path`` (a connect argument) names the schemas that
        unqualified tables are looked up in. GX reads column types with a query that leaves out
        the schema of the table asset, so the suite's schema must be searched."""
        search_path = cparams.pop("search_path", None)
        conn = super().connect(*cargs, **cparams)
        if search_path:
            conn.execute(f"SET search_path = '{search_path}'")
        return conn


registry.register(f"duckdb.{DRIVER}", __name__, "GreatExpectationsDuckDBDialect")
