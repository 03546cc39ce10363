"""GX Data Docs of every suite run: a static site that keeps each validation result.

The expectations run in an ephemeral GX context (``quality.runner``); the result is then handed
to a file-based GX project in the docs folder, whose validation results store keeps it and whose
site builder renders it. Each run renders only its own pages (its validation and its suite) and
the index; the index lists the results already stored, so suites validated one after another,
in one process or in later runs, add to the same site and never replace one another; each
suite keeps its newest ``KEEP`` results.

Folder: ``CRM360_QUALITY_DOCS``, else ``quality_docs/`` next to the warehouse file. The site's
``index.html`` is at the top of the folder; GX's own project (stores, suites, results as JSON)
is in its ``gx/`` sub-folder.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import great_expectations as gx
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import FileDataContext
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from quality.suites import Suite

DOCS_ENV = "CRM360_QUALITY_DOCS"
SITE = "local_site"

INDEX_LIMIT = 120
"""Validation results listed on the index page, newest first (the last 10 runs of 12 suites).
Building the index reads and parses each listed result (about 5 ms each), so the limit bounds
its cost as results pile up; results not listed keep their pages (up to ``KEEP`` per suite)."""

KEEP = 30
"""Validation results kept per suite, the newest; older ones and their pages are deleted, so the
folder stays near 30 MB (each kept result is about 70 KB of JSON and HTML) however often the
pipeline runs."""


@dataclass(frozen=True)
class DocsPages:
    """Where a run's results can be read: the site's index and the page of this validation."""

    index: str  # file:// URL
    validation: str | None


def docs_folder(warehouse: Path) -> Path:
    """The docs folder: ``CRM360_QUALITY_DOCS``, else ``quality_docs/`` beside the warehouse."""
    configured = os.environ.get(DOCS_ENV)
    return Path(configured) if configured else Path(warehouse).resolve().parent / "quality_docs"


def _site_config(folder: Path) -> dict:
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(folder),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_LIMIT,
        },
    }


def _context(folder: Path) -> FileDataContext:
    """The docs folder's GX project, created on first use, its site writing to the folder."""
    folder = folder.resolve()
    context = gx.get_context(mode="file", project_root_dir=folder)
    site = _site_config(folder)
    sites = context.variables.data_docs_sites or {}
    if sites.get(SITE) != site or len(sites) != 1 or context.config.analytics_enabled is not False:
        context.config.analytics_enabled = False
        context.variables.data_docs_sites = {SITE: site}
        context.variables.save()
    return context


def publish(
    folder: Path,
    suite: Suite,
    validation: ExpectationSuiteValidationResult,
    run_name: str | None = None,
) -> DocsPages:
    """Store one suite's validation result and render its pages and the index.

    ``run_name`` groups the results of one pipeline run (a Dagster run id); the run time is now.
    """
    context = _context(folder)
    # The suite as defined (with its ``{since}`` placeholders), for its own page. Copies: GX gives
    # stored expectations ids, and the suite objects are shared by every run of this process.
    context.suites.add_or_update(
        gx.ExpectationSuite(
            name=suite.name,
            expectations=[copy.deepcopy(e) for e in suite.expectations],
        )
    )
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
        run_id=RunIdentifier(run_name=run_name or "crm360", run_time=datetime.now(UTC)),
        batch_identifier=validation.batch_id or suite.relation,
    )
    context.validation_results_store.set(key, validation)
    _prune(context, suite.name)
    context.build_data_docs(
        site_names=[SITE],
        resource_identifiers=[key, ExpectationSuiteIdentifier(name=suite.name)],
    )
    [page] = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE)
    index = (Path(folder).resolve() / "index.html").as_uri()
    return DocsPages(index=index, validation=page["site_url"])


def _prune(context: FileDataContext, suite_name: str) -> None:
    """Delete the suite's results beyond the newest ``KEEP``, with their pages."""
    store = context.validation_results_store
    keys = [k for k in store.list_keys() if k.expectation_suite_identifier.name == suite_name]
    keys.sort(key=lambda k: k.run_id.run_time, reverse=True)
    for old in keys[KEEP:]:
        [page] = context.get_docs_sites_urls(resource_identifier=old, site_name=SITE)
        store.remove_key(old)
        if page["site_url"]:
            Path(unquote(urlparse(page["site_url"]).path)).unlink(missing_ok=True)
