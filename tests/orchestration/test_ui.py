"""The Dagster UI draws the project: `dagster-webserver` on the real definitions, read by headless
Chromium (Debian's chromium and chromedriver, driven by Selenium).

The asset graph is drawn by React from GraphQL after the page loads, so each test waits for the
drawn nodes (``foreignObject [data-tooltip]`` holds each node's full name) and fails naming what
never appeared. Names come from the definitions, so a new asset or check is expected without a
change here. `make test` installs chromium where apt-get can; without it these tests skip,
except on CI (``CI`` set), where they fail.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dagster import AssetKey

from orchestration.definitions import defs
from tests.browser import headless_chromium, page_words, require_chromium, show

REPO = Path(__file__).resolve().parents[2]
MODULE = "orchestration.definitions"  # the code location's name when loaded with -m, as make dev
# Large enough that the graph is drawn at a scale with full nodes (names in full): zoomed out,
# Dagster draws minimal nodes with shortened names.
WINDOW = "3200,3200"
NODE_NAMES_JS = (
    "return Array.from(document.querySelectorAll('foreignObject [data-tooltip]'), "
    "e => e.getAttribute('data-tooltip'))"
)
LOCATION_STATUS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _location_loaded(url: str) -> bool:
    """Whether the code location has loaded; raises with Dagster's error when it failed."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": LOCATION_STATUS}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False  # not listening yet
    entry = next((e for e in entries if e["name"] == MODULE), None)
    if entry is None or entry["loadStatus"] != "LOADED":
        return False
    loaded = entry["locationOrLoadError"]
    assert loaded["__typename"] == "RepositoryLocation", loaded.get("message", loaded)
    return True


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> Iterator[str]:
    """`dagster-webserver -m orchestration.definitions` on a free port, with its own
    DAGSTER_HOME and warehouse paths; the URL once the code location has loaded."""
    require_chromium()  # before spending the start-up on a server nobody can look at
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRM360_WAREHOUSE": str(root / "warehouse" / "crm360.duckdb"),
        "CRM360_LANDING_DIR": str(root / "landing"),
    }
    log = (root / "webserver.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-m", MODULE]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its code server is in the same process group, ended with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _location_loaded(url):
            tail = (root / "webserver.log").read_text()[-3000:]
            assert server.poll() is None, f"dagster-webserver exited:\n{tail}"
            assert time.monotonic() < deadline, f"the code location did not load:\n{tail}"
            time.sleep(0.5)
        yield url
    finally:  # a throwaway server with a throwaway DAGSTER_HOME: no need to wait for it
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), WINDOW) as driver:
        yield driver


def _graph_nodes(browser) -> Callable[[], set[str]]:
    return lambda: set(browser.execute_script(NODE_NAMES_JS))


def _graph():
    return defs.resolve_asset_graph()


def test_the_lineage_page_draws_every_asset_group(webserver, browser, tmp_path):
    groups = {_graph().get(k).group_name for k in _graph().get_all_asset_keys()}
    assert {"ingestion", "staging", "marts", "publish"} <= groups
    show(browser, f"{webserver}/asset-groups", _graph_nodes(browser), groups, tmp_path / "a.png")


def test_the_ingestion_group_draws_one_asset_per_source(webserver, browser, tmp_path):
    graph = _graph()
    sources = {
        k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingestion"
    }
    assert {"contacts", "email_events", "calls", "web_events", "orders"} <= sources
    url = f"{webserver}/locations/{MODULE}/asset-groups/ingestion"
    show(browser, url, _graph_nodes(browser), sources, tmp_path / "ingestion.png")


def test_the_lineage_of_publish_draws_every_mart(webserver, browser, tmp_path):
    marts = {k.path[-1] for k in _graph().get(AssetKey("publish")).parent_keys}
    assert {"customer_360", "customer_segments", "identity_map"} <= marts
    url = f"{webserver}/assets/publish?view=lineage&lineageScope=upstream&lineageDepth=1"
    show(browser, url, _graph_nodes(browser), marts | {"publish"}, tmp_path / "publish.png")


CHECKS_LISTED = {
    "raw/contacts": None,  # all of them
    "publish": None,
    "marts/customer_360": {"great_expectations", "unique_customer_360_customer_id"},
}
"""Checks to find on each asset's checks tab: the ingestion checks, publish's, and of a mart's
many (dbt tests and its suite) two that a longer list still shows first."""


@pytest.mark.parametrize("asset", sorted(CHECKS_LISTED))
def test_the_checks_of_an_asset_are_listed(webserver, browser, tmp_path, asset):
    checks = {
        c.name for c in _graph().asset_check_keys if c.asset_key == AssetKey(asset.split("/"))
    }
    expected = CHECKS_LISTED[asset] or checks
    assert expected and expected <= checks, (asset, sorted(checks))
    url = f"{webserver}/assets/{asset}?view=checks"
    show(browser, url, page_words(browser), expected, tmp_path / "checks.png")
