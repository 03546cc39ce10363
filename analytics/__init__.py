"""Customer analytics on warehouse data: no Dagster or dbt imports, callable from dbt models."""
