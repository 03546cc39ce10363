"""The landing sensor asks for a run when, and only when, the landing folder changes."""

from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from orchestration.automation import landing_sensor


def evaluate(cursor):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=cursor)
        result = landing_sensor(context)
        return result, context.cursor


def test_sensor_requests_a_run_for_new_files_and_skips_when_nothing_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM360_LANDING_DIR", str(tmp_path))
    result, cursor = evaluate(None)
    assert isinstance(result, SkipReason) and "no landing files" in result.skip_message

    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "orders-2025-01-01.jsonl").write_text('{"id": 1}\n')
    (tmp_path / "orders" / "notes.txt").write_text("not a landing file")
    result, cursor = evaluate(cursor)
    assert isinstance(result, RunRequest)
    assert result.run_key == cursor

    again, same_cursor = evaluate(cursor)
    assert isinstance(again, SkipReason) and same_cursor == cursor

    (tmp_path / "orders" / "orders-2025-01-02.jsonl").write_text('{"id": 2}\n')
    newer, newer_cursor = evaluate(cursor)
    assert isinstance(newer, RunRequest) and newer_cursor != cursor
