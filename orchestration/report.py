"""The run report: one HTML page of charts, written after every run, for people who would
rather look than read.

Six charts: RFM segments (customers and share of revenue), the cohort retention heatmap, the
distribution of predicted lifetime value, channel effectiveness (attributed revenue, email open
and click rates), identity resolution (records, people, merges, blocked identifiers) and data
quality (the run's checks, quarantined rows). Each is one small SQL aggregation run in DuckDB
on the warehouse, opened read-only; only the aggregated rows come to Python, where matplotlib
draws them as SVG. The SVGs are inlined into one HTML file that needs no network (no scripts,
no fonts or styles from elsewhere), and are attached to the ``report`` asset's materialisation
as Markdown images, so the Dagster UI shows the same charts.

Folder: ``CRM360_REPORT``, else ``report/`` next to the warehouse file; the page is
``index.html`` there, replaced whole (written aside, then renamed) at every run.
"""

import base64
import html
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from dagster import AssetChecksDefinition, AssetsDefinition, DagsterInstance

REPORT_ENV = "CRM360_REPORT"
REPORT_KEY = ("report",)
REPORT_MARTS = (
    "segment_summary",
    "customer_segments",
    "cohort_retention",
    "channel_effectiveness",
    "identity_map",
    "customer_identifiers",
    "customer_id_history",
    "customer_360",
)
"""The marts the report reads (it also reads audit.quarantine, written by ingestion)."""

TOP = 12
"""Bars shown at most in a ranked chart (campaigns, quarantine reasons)."""
CLV_BINS = 30
COHORTS_SHOWN = 24
"""Newest cohorts (and months since the first order) in the heatmap."""

STATUSES = ("passed", "warned", "failed")
STAGE_ORDER = ("raw", "seeds", "staging", "intermediate", "marts", "publish", "report")


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check's verdict in a run: ``status`` is passed, warned (failed with WARN
    severity: shown, the run went on) or failed (ERROR severity: downstream stopped)."""

    asset: str  # e.g. raw/orders
    check: str
    status: str
    description: str | None = None

    @property
    def stage(self) -> str:
        return self.asset.split("/", 1)[0]


@dataclass
class Chart:
    """One chart of the report: what it shows, how to read it, the aggregated rows it draws
    (panel name -> rows), and the SVG (None when there is nothing to draw)."""

    key: str
    title: str
    caption: str
    data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    svg: str | None = None
    no_data: str | None = None  # why there is nothing to draw, in words

    @property
    def rows(self) -> int:
        return sum(len(rows) for rows in self.data.values())


@dataclass
class Report:
    path: Path
    run_id: str
    generated_at: datetime
    as_of: str | None
    charts: list[Chart]


def report_folder(warehouse: Path) -> Path:
    """The report folder: ``CRM360_REPORT``, else ``report/`` beside the warehouse file."""
    configured = os.environ.get(REPORT_ENV)
    return Path(configured) if configured else Path(warehouse).resolve().parent / "report"


# --- the data of each chart: one aggregation each, in DuckDB -------------------------------


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    cursor = conn.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def segments_data(conn: duckdb.DuckDBPyConnection, chart: Chart) -> None:
    rows = _rows(
        conn,
        "SELECT rfm_segment, sum(customers) AS customers, "
        "sum(coalesce(revenue_share, 0)) AS revenue_share FROM marts.segment_summary "
        "GROUP BY rfm_segment ORDER BY customers DESC, rfm_segment",
    )
    chart.data["segments"] = [r for r in rows if r["rfm_segment"] != "(no orders)"]
    without = sum(r["customers"] for r in rows if r["rfm_segment"] == "(no orders)")
    if without:
        chart.notes.append(
            f"{without:,} customers without an order have no RFM segment and are not shown."
        )


def cohort_data(conn: duckdb.DuckDBPyConnection, chart: Chart) -> None:
    chart.data["cells"] = _rows(
        conn,
        "WITH newest AS (SELECT max(cohort_month) AS m FROM marts.cohort_retention) "
        "SELECT strftime(cohort_month, '%Y-%m') AS cohort, months_since_first_order AS month, "
        "cohort_customers, retention_rate, is_complete_month "
        "FROM marts.cohort_retention, newest "
        "WHERE cohort_month > m - to_months(?) AND months_since_first_order < ? "
        "ORDER BY cohort_month, months_since_first_order",
        [COHORTS_SHOWN, COHORTS_SHOWN],
    )


def lifetime_value_data(conn: duckdb.DuckDBPyConnection, chart: Chart) -> None:
    """A histogram of ``CLV_BINS`` bars from 0 to the 99th percentile, binned in SQL; the last
    bar also holds everyone above it, so one customer worth millions does not flatten it."""
    chart.data["bins"] = _rows(
        conn,
        f"""
        WITH clv AS (
            SELECT predicted_clv AS v FROM marts.customer_segments WHERE predicted_clv IS NOT NULL
        ), span AS (SELECT quantile_cont(v, 0.99) AS top FROM clv)
        SELECT CASE WHEN top > 0 THEN least(CAST(floor(v * {CLV_BINS} / top) AS INTEGER),
                                            {CLV_BINS - 1}) ELSE 0 END AS bin,
               any_value(top) / {CLV_BINS} AS width, count(*) AS customers
        FROM clv, span GROUP BY bin ORDER BY bin
        """,
    )
    if chart.data["bins"]:
        stats = chart.data["summary"] = _rows(
            conn,
            "SELECT count(*) AS n, median(predicted_clv) AS median, avg(predicted_clv) AS mean, "
            "max(predicted_clv) AS max FROM marts.customer_segments "
            "WHERE predicted_clv IS NOT NULL",
        )
        stats = stats[0]
        chart.notes.append(
            f"{stats['n']:,} customers with a prediction: median {stats['median']:,.0f}, "
            f"mean {stats['mean']:,.0f}, highest {stats['max']:,.0f}. The last bar holds "
            "everyone above the 99th percentile."
        )


def channels_data(conn: duckdb.DuckDBPyConnection, chart: Chart) -> None:
    chart.data["attributed_revenue"] = _rows(
        conn,
        "SELECT channel, campaign_source, campaign, "
        "sum(first_touch_revenue_reporting) AS first_touch, "
        "sum(last_touch_revenue_reporting) AS last_touch "
        "FROM marts.channel_effectiveness GROUP BY ALL "
        "HAVING sum(first_touch_revenue_reporting) + sum(last_touch_revenue_reporting) > 0 "
        "ORDER BY last_touch + first_touch DESC, channel, campaign_source, campaign LIMIT ?",
        [TOP],
    )
    chart.data["email_rates"] = _rows(
        conn,
        "SELECT campaign, email_messages_delivered AS delivered, email_open_rate AS open_rate, "
        "email_click_rate AS click_rate FROM marts.channel_effectiveness "
        "WHERE channel = 'email' AND email_messages_delivered > 0 "
        "ORDER BY delivered DESC, campaign LIMIT ?",
        [TOP],
    )


def identity_data(conn: duckdb.DuckDBPyConnection, chart: Chart) -> None:
    records = _rows(
        conn,
        "SELECT source, count(*) AS records FROM marts.identity_map "
        "GROUP BY source ORDER BY source",
    )
    if not records:
        return
    people = _rows(
        conn,
        "SELECT count(*) FILTER (WHERE is_known) AS known, "
        "count(*) FILTER (WHERE NOT is_known) AS anonymous FROM marts.customer_360",
    )[0]
    changes = _rows(
        conn,
        "SELECT kind, count(h.event_type) AS n FROM (VALUES ('merged'), ('split')) AS k(kind) "
        "LEFT JOIN marts.customer_id_history AS h ON h.event_type = k.kind "
        "GROUP BY kind ORDER BY kind",
    )
    blocked = _rows(
        conn,
        "SELECT identifier_type, count(DISTINCT identifier_value) AS n "
        "FROM marts.customer_identifiers WHERE is_blocked_as_link "
        "GROUP BY identifier_type ORDER BY identifier_type",
    )
    chart.data["records"] = records
    chart.data["people"] = [people]
    chart.data["protection"] = [
        *({"item": f"ids {c['kind']}", "n": c["n"]} for c in changes),
        *({"item": f"{b['identifier_type']} values blocked", "n": b["n"]} for b in blocked),
    ]
    count = {c["kind"]: c["n"] for c in changes}
    chart.notes.append(
        f"{sum(r['records'] for r in records):,} records of {len(records)} sources resolve to "
        f"{people['known'] + people['anonymous']:,} people ({people['known']:,} known, "
        f"{people['anonymous']:,} anonymous); {count['merged']:,} ids merged and "
        f"{count['split']:,} split so far; {sum(b['n'] for b in blocked):,} identifier values "
        "blocked as links."
    )


def quality_data(
    conn: duckdb.DuckDBPyConnection, chart: Chart, checks: Sequence[CheckOutcome] | None = None
) -> None:
    """The run's check outcomes (from Dagster, not the warehouse) and the quarantine."""
    if checks:
        stages = sorted({c.stage for c in checks}, key=_stage_rank)
        chart.data["checks"] = [
            {
                "stage": stage,
                **{s: sum(c.stage == stage and c.status == s for c in checks) for s in STATUSES},
            }
            for stage in stages
        ]
        for outcome in [c for c in checks if c.status != "passed"][:10]:
            chart.notes.append(
                f"{outcome.asset} {outcome.check} {outcome.status}"
                + (f": {outcome.description}" if outcome.description else "")
            )
    else:
        chart.notes.append("No check results were given for this report.")
    chart.data["quarantine"] = _rows(
        conn,
        "SELECT source, split_part(reason, ':', 1) AS reason, count(*) AS rows "
        "FROM audit.quarantine GROUP BY ALL ORDER BY rows DESC, source, reason LIMIT ?",
        [TOP],
    )
    total = conn.execute("SELECT count(*) FROM audit.quarantine").fetchone()[0]
    if total:
        chart.notes.append(
            f"{total:,} rows quarantined in all; the largest groups shown (at most {TOP})."
        )


def _stage_rank(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)


def report_charts(
    conn: duckdb.DuckDBPyConnection, checks: Sequence[CheckOutcome] | None = None
) -> list[Chart]:
    """Every chart with its data, queried on ``conn``, and its SVG. A chart whose table is
    missing or empty says so, and the others are drawn all the same."""
    from orchestration import report_charts as figures

    charts = []
    for spec in CHARTS:
        chart = Chart(spec.key, spec.title, spec.caption)
        query = partial(quality_data, checks=checks) if spec.query is quality_data else spec.query
        try:
            query(conn, chart)
        except duckdb.CatalogException as error:
            chart.data.clear()
            chart.no_data = f"not in the warehouse yet: {str(error).splitlines()[0]}"
        if chart.rows:
            figure = getattr(figures, spec.figure)(chart.data)
            chart.svg = figures.to_svg(figure, salt=spec.key, title=spec.title)
        elif chart.no_data is None:
            chart.no_data = "the tables it reads hold no rows for it yet"
        charts.append(chart)
    return charts


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    caption: str  # how to read it, in a sentence or two
    query: Callable[[duckdb.DuckDBPyConnection, Chart], None]
    figure: str
    """its function in orchestration.report_charts, imported when a report is drawn (so the
    Dagster definitions load without matplotlib)"""


CHARTS = (
    ChartSpec(
        "segments",
        "Segments: customers and share of revenue",
        "Each bar is an RFM segment of the customers who bought (marts.segment_summary): on "
        "the left how many customers it holds, on the right its share of all net revenue. "
        "Champions and Loyal customers usually make most of it; long At Risk or Can't Lose "
        "Them bars are revenue to win back.",
        segments_data,
        "segments_figure",
    ),
    ChartSpec(
        "cohort_retention",
        "Cohort retention",
        "Each row is the customers whose first order fell in that month (how many in brackets); "
        "each cell the share of them who ordered in the month that many months later "
        "(marts.cohort_retention). Read along a row to see a cohort fade, down a column to "
        "compare cohorts at the same age; * marks a month that is not over yet.",
        cohort_data,
        "cohorts_figure",
    ),
    ChartSpec(
        "lifetime_value",
        "Predicted lifetime value",
        "How many customers (bar height) are predicted to spend how much (bar position) over "
        "the model's horizon (marts.customer_segments.predicted_clv, reporting currency). A "
        "long tail to the right is usual: a few customers are worth many times the median "
        "(dashed line).",
        lifetime_value_data,
        "lifetime_value_figure",
    ),
    ChartSpec(
        "channels",
        "Channel effectiveness",
        "Left: the net revenue of the orders credited to each campaign, by first and by last "
        "touch within the attribution window (marts.channel_effectiveness), the largest "
        "first. Right: the share of each email campaign's delivered messages that were opened "
        "and that were clicked.",
        channels_data,
        "channels_figure",
    ),
    ChartSpec(
        "identity",
        "Identity resolution",
        "Left: the loaded records of every source, and the people they resolve to: known "
        "(named by a CRM contact, an order, an email, a call or a logged-in visit) or "
        "anonymous (browser cookies only). Right: customer ids "
        "merged into another or split since the warehouse began (marts.customer_id_history), "
        "and identifier values kept from linking people (placeholders, shared inboxes, "
        "household phones).",
        identity_data,
        "identity_figure",
    ),
    ChartSpec(
        "data_quality",
        "Data quality",
        "Left: this run's checks (Great Expectations suites, row accounting, dbt tests) by "
        "layer: green passed, orange warned (the run went on), red failed (what is downstream "
        "was stopped). Right: rows set aside in audit.quarantine since the warehouse began, by "
        "source and reason.",
        quality_data,
        "quality_figure",
    ),
)
"""The report's charts, in the page's order."""


# --- the page ------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; color: #222; background: #f6f6f4; }
header, main { max-width: 1020px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 20px; }
h1 { margin: 0 0 4px; font-size: 24px; }
.about { color: #555; font-size: 14px; margin: 0 0 8px; }
nav a { margin-right: 14px; font-size: 14px; color: #0072B2; }
section.chart { background: #fff; border-radius: 6px; padding: 16px 20px; margin: 18px 0;
                box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { margin: 0 0 4px; font-size: 18px; }
.caption { margin: 0 0 10px; color: #444; font-size: 14px; max-width: 80ch; }
figure { margin: 0; }
figure svg { width: 100%; height: auto; }
.notes { color: #444; font-size: 13px; margin: 8px 0 0; padding-left: 18px; }
.no-data { padding: 28px; text-align: center; color: #666; background: #f0f0ee;
           border-radius: 4px; font-size: 15px; }
footer { max-width: 1020px; margin: 0 auto 30px; padding: 0 16px; color: #777; font-size: 12px; }
"""


def report_html(report: Report, links: Sequence[tuple[str, str]] = ()) -> str:
    """The page: every chart as inline SVG, styles inline, nothing loaded from elsewhere."""
    e = html.escape
    about = f"run {e(report.run_id)} · generated {report.generated_at:%Y-%m-%d %H:%M} UTC"
    if report.as_of:
        about += f" · data up to {e(report.as_of)}"
    nav = " ".join(f'<a href="#{c.key}">{e(c.title)}</a>' for c in report.charts)
    sections = []
    for c in report.charts:
        body = (
            f"<figure>{c.svg}</figure>"
            if c.svg
            else f'<p class="no-data">No data: {e(c.no_data or "nothing to draw")}.</p>'
        )
        notes = "".join(f"<li>{e(n)}</li>" for n in c.notes)
        sections.append(
            f'<section class="chart" id="{c.key}" data-chart="{c.key}" data-rows="{c.rows}">\n'
            f'<h2>{e(c.title)}</h2>\n<p class="caption">{e(c.caption)}</p>\n{body}\n'
            + (f'<ul class="notes">{notes}</ul>\n' if notes else "")
            + "</section>"
        )
    more = " · ".join(f'<a href="{e(href)}">{e(label)}</a>' for label, href in links)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>crm360 report · {report.generated_at:%Y-%m-%d %H:%M} UTC</title>\n"
        f"<style>{STYLE}</style>\n</head>\n"
        f'<body data-run-id="{e(report.run_id)}">\n<header>\n<h1>crm360 report</h1>\n'
        f'<p class="about">{about}</p>\n<nav>{nav}</nav>\n</header>\n<main>\n'
        + "\n".join(sections)
        + f"\n</main>\n<footer>{more}</footer>\n</body>\n</html>\n"
    )


def write_report(
    warehouse: Path,
    folder: Path | None = None,
    *,
    run_id: str = "",
    checks: Sequence[CheckOutcome] | None = None,
) -> Report:
    """Query the warehouse (read-only), draw every chart and write ``index.html`` into
    ``folder`` (default :func:`report_folder`), replacing the previous page in one rename."""
    from ingestion.warehouse import connect

    folder = Path(folder or report_folder(warehouse))
    with connect(Path(warehouse), read_only=True) as conn:
        charts = report_charts(conn, checks)
        try:
            as_of = conn.execute("SELECT max(as_of_date) FROM marts.customer_360").fetchone()[0]
        except duckdb.CatalogException:
            as_of = None
    report = Report(
        path=folder / "index.html",
        run_id=run_id,
        generated_at=datetime.now(UTC),
        as_of=str(as_of) if as_of else None,
        charts=charts,
    )
    folder.mkdir(parents=True, exist_ok=True)
    aside = folder / f".index.html.{os.getpid()}.writing"
    aside.write_text(report_html(report, _links(Path(warehouse), folder)), encoding="utf-8")
    os.replace(aside, report.path)  # a reader sees the previous page or this one
    return report


def _links(warehouse: Path, folder: Path) -> list[tuple[str, str]]:
    """Relative links to what lies beside the report: the quality Data Docs."""
    from quality.docs import docs_folder

    docs = docs_folder(warehouse) / "index.html"
    if not docs.exists():
        return []
    return [("Great Expectations Data Docs", os.path.relpath(docs, folder.resolve()))]


class _Sections(HTMLParser):
    """The chart sections of a report page: key -> rows, whether it has an SVG or says
    'No data', and any resource the page would load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None
        self.sections: dict[str, dict[str, Any]] = {}
        self.remote: list[str] = []
        self._current: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.run_id = a.get("data-run-id")
        if tag in ("script", "link", "iframe", "object") or any(
            name in ("src", "href") and value and "://" in value for name, value in attrs
        ):
            self.remote.append(f"<{tag} {' '.join(f'{k}={v}' for k, v in attrs)}>")
        if tag == "section" and a.get("data-chart"):
            self._current = a["data-chart"]
            self.sections[self._current] = {
                "rows": int(a.get("data-rows") or 0),
                "svg": False,
                "no_data": False,
            }
        elif self._current and tag == "svg":
            self.sections[self._current]["svg"] = True
        elif self._current and tag == "p" and a.get("class") == "no-data":
            self.sections[self._current]["no_data"] = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._current = None


def read_report(path: Path) -> _Sections:
    parser = _Sections()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    return parser


def report_problems(path: Path, run_id: str) -> tuple[list[str], list[str]]:
    """What is wrong with the page at ``path`` (missing, not this run's, a chart missing or
    drawn without data, anything loaded from elsewhere), and which charts have no data."""
    if not path.exists():
        return [f"no report at {path}"], []
    page = read_report(path)
    problems = []
    if page.run_id != run_id:
        problems.append(f"{path} is the report of run {page.run_id}, not of run {run_id}")
    for spec in CHARTS:
        found = page.sections.get(spec.key)
        if found is None:
            problems.append(f"chart {spec.key} is missing")
        elif found["rows"] and not found["svg"]:
            problems.append(f"chart {spec.key} has {found['rows']} rows of data but no picture")
        elif not found["svg"] and not found["no_data"]:
            problems.append(f"chart {spec.key} has no picture and does not say it has no data")
    problems += [f"loads from elsewhere: {r}" for r in page.remote[:5]]
    empty = [key for key, found in page.sections.items() if not found["rows"]]
    return problems, empty


# --- Dagster ------------------------------------------------------------------------------


def check_outcomes(instance: "DagsterInstance", run_id: str) -> list[CheckOutcome]:
    """The verdict of every asset check evaluated so far in the run, from Dagster's event log
    (Great Expectations suites, row accounting, dbt tests)."""
    from dagster import AssetCheckSeverity, DagsterEventType

    outcomes, cursor = [], None
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000
        )
        for record in page.records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            key = evaluation.asset_check_key
            failed = "failed" if evaluation.severity == AssetCheckSeverity.ERROR else "warned"
            outcomes.append(
                CheckOutcome(
                    asset=key.asset_key.to_user_string(),
                    check=key.name,
                    status="passed" if evaluation.passed else failed,
                    description=None if evaluation.passed else evaluation.description,
                )
            )
        if not page.has_more:
            return outcomes
        cursor = page.cursor


def _markdown(chart: Chart) -> str:
    """The chart for the Dagster UI: its SVG as a Markdown image (the UI's Markdown allows
    ``data:`` images), the caption and the notes."""
    if chart.svg:
        picture = base64.b64encode(chart.svg.encode()).decode()
        body = f"![{chart.title}](data:image/svg+xml;base64,{picture})"
    else:
        body = f"**No data:** {chart.no_data}."
    notes = "".join(f"\n- {n}" for n in chart.notes)
    return f"**{chart.title}**\n\n{chart.caption}\n\n{body}\n{notes}"


def build_report(
    upstream: "Sequence[AssetsDefinition]",
) -> "tuple[AssetsDefinition, AssetChecksDefinition]":
    """The ``report`` asset, after the marts it reads and the raw tables (audit.quarantine),
    and its blocking check that the page is whole."""
    from dagster import (
        AssetCheckExecutionContext,
        AssetCheckResult,
        AssetCheckSeverity,
        AssetExecutionContext,
        AssetKey,
        MaterializeResult,
        MetadataValue,
        asset,
        asset_check,
    )

    from orchestration.ingest import WAREHOUSE_POOL
    from orchestration.resources import Warehouse

    keys = {k for a in upstream for k in a.keys}
    marts = [AssetKey(["marts", t]) for t in REPORT_MARTS]
    missing = [k.to_user_string() for k in marts if k not in keys]
    if missing:
        raise ValueError(f"the report reads marts that no asset builds: {', '.join(missing)}")
    raw = sorted((k for k in keys if k.path[0] == "raw"), key=lambda k: k.path)

    @asset(
        key=AssetKey(REPORT_KEY),
        deps=[*marts, *raw],
        group_name="report",
        kinds={"duckdb", "html"},
        # It only reads, but DuckDB lets no reader open the file while a writer holds it.
        pool=WAREHOUSE_POOL,
        description=(
            "One HTML page of charts (report/index.html next to the warehouse, "
            "CRM360_REPORT): segments and revenue, cohort retention, predicted lifetime value, "
            "channel effectiveness, identity resolution and this run's data quality. Opens "
            "offline; the same charts are in this asset's metadata."
        ),
    )
    def _report(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        report = write_report(
            Path(warehouse.path),
            run_id=context.run.run_id,
            checks=check_outcomes(context.instance, context.run.run_id),
        )
        for chart in report.charts:
            if not chart.svg:
                context.log.warning(f"report chart {chart.key}: no data ({chart.no_data})")
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(report.path)),
                "url": MetadataValue.url(report.path.resolve().as_uri()),
                "charts": len(report.charts),
                "charts_with_data": sum(bool(c.svg) for c in report.charts),
                **{c.key: MetadataValue.md(_markdown(c)) for c in report.charts},
            }
        )

    @asset_check(
        asset=AssetKey(REPORT_KEY),
        name="every_chart_drawn",
        blocking=True,
        description=(
            "The report page is this run's, holds every chart, each drawn from data or saying "
            "plainly that it has none, and loads nothing from elsewhere (it opens offline)."
        ),
    )
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        problems, empty = report_problems(
            report_folder(Path(warehouse.path)) / "index.html", context.run.run_id
        )
        return AssetCheckResult(
            passed=not problems and not empty,
            # A broken page is an error; a chart without data (a new warehouse) a warning.
            severity=AssetCheckSeverity.WARN
            if empty and not problems
            else AssetCheckSeverity.ERROR,
            description="; ".join(problems[:5])
            or (f"charts without data: {', '.join(empty)}" if empty else None)
            or f"all {len(CHARTS)} charts drawn from data",
            metadata={"charts": len(CHARTS), "charts_without_data": len(empty)},
        )

    return _report, _check
