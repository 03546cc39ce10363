"""The ``crm360`` command: generate sample data, and run the whole pipeline in-process."""

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"crm360: --var expects NAME=VALUE, got {pair!r}")
        values[name.strip()] = value
    return values


def cmd_generate(args: argparse.Namespace) -> int:
    from ingestion.generator import generate

    summary = generate(
        Path(args.out), people=args.people, seed=args.seed, start=args.start, days=args.days
    )
    print(summary)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.landing:
        os.environ["CRM360_LANDING_DIR"] = str(Path(args.landing).resolve())
    if args.warehouse:
        os.environ["CRM360_WAREHOUSE"] = str(Path(args.warehouse).resolve())
    if args.publish:
        os.environ["CRM360_PUBLISHED"] = str(Path(args.publish).resolve())
    os.environ["CRM360_VARS"] = json.dumps(_parse_vars(args.var or []))

    from orchestration.runner import run_pipeline

    return run_pipeline()


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from orchestration.publish import PublishError, open_published, published_path, repl, run_sql

    path = published_path(args.published)
    try:
        conn = open_published(path)
    except PublishError as error:
        print(f"crm360: {error}", file=sys.stderr)
        return 2
    with conn:
        if args.query is None:
            return repl(conn, path)
        try:
            run_sql(conn, args.query)
        except duckdb.Error as error:
            print(f"crm360: {error}", file=sys.stderr)
            return 1
    return 0


def cmd_audience_export(args: argparse.Namespace) -> int:
    from ingestion.warehouse import warehouse_path
    from orchestration.audience import AudienceError, export_audience

    try:
        result = export_audience(
            warehouse_path(args.warehouse),
            args.segment,
            args.channel,
            Path(args.out) if args.out else None,
        )
    except AudienceError as error:
        print(f"crm360: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm360", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a realistic sample landing folder")
    gen.add_argument("--out", required=True, help="landing folder to write")
    gen.add_argument("--people", type=int, required=True, help="number of people to simulate")
    gen.add_argument("--seed", type=int, default=42, help="same seed, same bytes (default 42)")
    gen.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 1, 1),
        help="first day of data, YYYY-MM-DD (default 2025-01-01)",
    )
    gen.add_argument("--days", type=int, default=90, help="number of days (default 90)")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="materialise every asset of the project, in order")
    run.add_argument("--landing", help="landing folder (default $CRM360_LANDING_DIR or landing/)")
    run.add_argument(
        "--warehouse", help="DuckDB file (default $CRM360_WAREHOUSE or warehouse/crm360.duckdb)"
    )
    run.add_argument(
        "--publish",
        metavar="FILE",
        help="published copy of the marts to write "
        "(default $CRM360_PUBLISHED or published.duckdb next to the warehouse)",
    )
    run.add_argument(
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="project variable for this run (a dbt var); repeatable",
    )
    run.set_defaults(func=cmd_run)

    sql = sub.add_parser(
        "sql", help="query the published copy read-only; without QUERY, an interactive prompt"
    )
    sql.add_argument("query", nargs="?", help="SQL to run; the last statement's result is shown")
    sql.add_argument(
        "--published",
        metavar="FILE",
        help="published copy (default $CRM360_PUBLISHED or published.duckdb next to the warehouse)",
    )
    sql.set_defaults(func=cmd_sql)

    audience = sub.add_parser("audience", help="contactable lists of a segment for campaign tools")
    audience_sub = audience.add_subparsers(dest="audience_command", required=True)
    export = audience_sub.add_parser(
        "export", help="write the customers of an RFM segment reachable on a channel"
    )
    export.add_argument("--segment", required=True, help="RFM segment name, e.g. 'At Risk'")
    export.add_argument("--channel", required=True, choices=("email", "phone"))
    export.add_argument(
        "--out", help="file to write, .csv or .parquet (default audience-<segment>-<channel>.csv)"
    )
    export.add_argument(
        "--warehouse", help="DuckDB file (default $CRM360_WAREHOUSE or warehouse/crm360.duckdb)"
    )
    export.set_defaults(func=cmd_audience_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
