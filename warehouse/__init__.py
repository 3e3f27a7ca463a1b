"""The warehouse: PostgreSQL as the system of record, the DuckDB rollups built from it, and
the queries the dashboard, the alerts and the API ask of both."""
