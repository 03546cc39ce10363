"""Row accounting of ingestion: every row of every landed file is loaded, quarantined or a
duplicate, and what ``audit.loaded_files`` says matches what the tables hold.

Plain DuckDB SQL, no Dagster: the asset checks call it, and so can a person or a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ingestion.sources import Source


@dataclass(frozen=True)
class Accounting:
    files: int
    rows_in_files: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    problems: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def account_source(conn: duckdb.DuckDBPyConnection, source: Source, limit: int = 20) -> Accounting:
    """Check, per file of the source, rows = loaded + quarantined + duplicates, and that the
    recorded loaded and quarantined counts equal the rows present in raw and audit.quarantine."""
    totals = conn.execute(
        """
        SELECT count(*), coalesce(sum(rows_in_file), 0), coalesce(sum(rows_loaded), 0),
               coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_duplicate), 0)
        FROM audit.loaded_files WHERE source = ?
        """,
        [source.name],
    ).fetchone()
    cursor = conn.execute(
        f"""
        WITH raw_counts AS (
            SELECT _file_name AS file_name, _file_sha256 AS file_sha256, count(*) AS n
            FROM {source.raw_table} GROUP BY ALL
        ), quarantine_counts AS (
            SELECT file_name, file_sha256, count(*) AS n
            FROM audit.quarantine WHERE source = ? AND row_number IS NOT NULL GROUP BY ALL
        )
        SELECT f.file_name, f.status, f.rows_in_file, f.rows_loaded, f.rows_quarantined,
               f.rows_duplicate, coalesce(r.n, 0) AS rows_in_raw,
               coalesce(q.n, 0) AS rows_in_quarantine,
               CASE
                 WHEN f.rows_in_file <> f.rows_loaded + f.rows_quarantined + f.rows_duplicate
                   THEN 'rows in file differ from loaded + quarantined + duplicates'
                 WHEN f.rows_loaded <> coalesce(r.n, 0)
                   THEN 'recorded loaded rows differ from the rows in the raw table'
                 WHEN f.rows_quarantined <> coalesce(q.n, 0)
                   THEN 'recorded quarantined rows differ from the rows in audit.quarantine'
               END AS problem
        FROM audit.loaded_files f
        LEFT JOIN raw_counts r USING (file_name, file_sha256)
        LEFT JOIN quarantine_counts q USING (file_name, file_sha256)
        WHERE f.source = ? AND problem IS NOT NULL
        ORDER BY f.file_name
        LIMIT {int(limit)}
        """,
        [source.name, source.name],
    )
    columns = [d[0] for d in cursor.description]
    problems = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    orphans = conn.execute(
        f"""
        SELECT DISTINCT r._file_name FROM {source.raw_table} r
        ANTI JOIN audit.loaded_files f
          ON f.file_name = r._file_name AND f.file_sha256 = r._file_sha256
        LIMIT {int(limit)}
        """
    ).fetchall()
    problems += [
        {"file_name": name, "problem": "rows in the raw table from a file never recorded"}
        for (name,) in orphans
    ]
    return Accounting(*totals, problems=problems)
