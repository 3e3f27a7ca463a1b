"""The REST API for integrations (issue 22): a case-management system, a SOC or a data team reads
stores, cameras, incidents and analytics through it with an API token, under the same scope rules
as the dashboard (docs/API.md).

- `app`: `create_app(settings)`, the routes under `/v1`, the OpenAPI schema and the one error shape;
- `auth`: the bearer token of each request, asked in PostgreSQL when it is served; permissions;
- `routes_site`, `routes_incidents`, `routes_analytics`: one module per resource, thin routes over
  the query layer (warehouse) with the caller's scope; evidence through privacy.access;
- `models`: the answers and the verdict body as pydantic models (the schema is made from them);
- `server`: `shrinkwatch api` under uvicorn, stopped cleanly by SIGINT or SIGTERM.

The API never loads Streamlit (tests/test_layers.py): what it shares with the dashboard lives
below both, in warehouse and privacy.
"""
