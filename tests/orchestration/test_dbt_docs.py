"""dbt docs (descriptions, columns, lineage) are written by every run beside the warehouse, and
each dbt asset links to its page there."""

import json

import duckdb
from dagster import AssetKey

from orchestration.definitions import defs
from orchestration.transform import DOCS_FOLDER, dbt_docs_url
from tests.browser import headless_chromium, page_words, show


def dbt_marts(graph) -> dict[str, str]:
    """Every dbt model of schema marts the definitions hold: table -> dbt unique id."""
    marts = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] == "marts" and "dbt" in node.kinds:
            marts[key.path[1]] = f"model.crm360.{key.path[1]}"
    return marts


def test_the_run_writes_dbt_docs_next_to_the_warehouse_with_every_mart(pipeline):
    run_log = pipeline["first"].stdout + pipeline["first"].stderr
    assert "dbt docs: file://" in run_log and "dbt docs not written" not in run_log
    folder = pipeline["warehouse"].parent / DOCS_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == [
        "catalog.json",
        "index.html",
        "manifest.json",
    ]
    marts = dbt_marts(defs.resolve_asset_graph())
    assert {"customer_360", "identity_map", "customer_segments", "clv_predictions"} <= set(marts)

    manifest = json.loads((folder / "manifest.json").read_text())
    catalog = json.loads((folder / "catalog.json").read_text())
    index = (folder / "index.html").read_text()
    assert "INLINE DATA" not in index  # --static put manifest and catalog inside the page
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        for table, unique_id in marts.items():
            node = manifest["nodes"][unique_id]
            assert node["description"].strip(), f"{table} has no description"
            assert f'"{unique_id}"' in index, table
            # the catalog is the warehouse as the run left it: the same columns, in order
            columns = [
                name
                for (name,) in conn.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' "
                    "AND table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
            ]
            listed = catalog["nodes"][unique_id]["columns"].values()
            assert [c["name"] for c in sorted(listed, key=lambda c: c["index"])] == columns
    # lineage: the docs know what each mart is built from
    assert "model.crm360.identity_map" in manifest["parent_map"]["model.crm360.customer_360"]


def test_every_dbt_asset_links_to_its_docs_page():
    graph = defs.resolve_asset_graph()
    linked = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if "dbt" not in node.kinds or key.path[0] == "raw":
            continue
        link = node.metadata["dbt_docs"].value
        assert link.startswith("file://") and f"/{DOCS_FOLDER}/index.html#!/" in link, key
        linked += 1
    assert linked >= 30
    customer_360 = graph.get(AssetKey(["marts", "customer_360"])).metadata["dbt_docs"].value
    assert customer_360 == dbt_docs_url("model.crm360.customer_360")
    assert customer_360.endswith("/index.html#!/model/model.crm360.customer_360")


def test_the_docs_page_of_a_mart_opens_from_the_file_in_a_browser(pipeline, tmp_path):
    """The static page needs no server: headless Chromium draws the model's page from
    file://, with its description and the columns of the catalog."""
    folder = pipeline["warehouse"].parent / DOCS_FOLDER
    catalog = json.loads((folder / "catalog.json").read_text())
    columns = set(catalog["nodes"]["model.crm360.customer_360"]["columns"])
    assert {"customer_id", "net_revenue_reporting"} <= columns
    url = (folder / "index.html").as_uri() + "#!/model/model.crm360.customer_360"
    with headless_chromium(tmp_path / "profile") as browser:
        show(
            browser,
            url,
            page_words(browser),
            {"customer_360", "Columns"} | columns,
            tmp_path / "d.png",
        )
