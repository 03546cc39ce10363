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
    os.environ["CRM360_VARS"] = json.dumps(_parse_vars(args.var or []))

    from orchestration.runner import run_pipeline

    return run_pipeline()


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
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="project variable for this run (a dbt var); repeatable",
    )
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
