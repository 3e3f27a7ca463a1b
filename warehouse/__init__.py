"""The warehouse: PostgreSQL as the system of record, the DuckDB rollups built from it, and
the questions the dashboard, the alerts and the API ask of both.

The rule: SQL lives only here, one module per resource, and every PostgreSQL table is
written (INSERT, UPDATE, DELETE, COPY, TRUNCATE, upserts) by exactly one module, its owner.
Other parts, and other modules here, call the owner's functions; reading another owner's
table is fine (the rollups read incidents; the incident list reads who has seen what), since
what must have one home is how a row changes. tests/test_layers.py holds the rule (its
TABLE_OWNERS), with one declared exception: the synthetic history of `seed.py`.

Owners, by resource:
- the site: `site_tables` (stores, cameras, zones)
- incidents, verdicts, the lists and the CSV export: `incidents`; what each account has
  seen: `seen` (incident_seen)
- footfall, occupancy and heatmaps: `occupancy` (occupancy_minutes, occupancy_late,
  heatmap_hours, rollup_changes); cameras' health: `camera_health`; risk weights: `weights`
- rollups: `rollups` (rollup_state and the rollup_* tables)
- accounts: `accounts` (users); sessions: `sessions` (user_sessions); sign-in throttling:
  `sign_in_throttle` (sign_in_failures); single sign-on: `single_sign_on` (sso_requests)
- alerts: `alert_recipients` (alert_recipients, alert_mutes), `alert_outbox`
  (alert_outbox), `alert_digests` (alert_digests)
- migrations: `migrate` (schema_migrations)

Readers that own no table: `analytics` (the analytics pages' questions, from the rollups),
`economics` (ROI; a store's assumptions are written through `site_tables`). Policies that
call owners: `retention` (what is old enough to go), `jobs` (the rollup scheduler's round).
`partitions` makes and drops the day partitions of occupancy_minutes (its schema, not its
rows).
The caller and the question (`User`, `Scope`, `IncidentFilter`, `Cursor`, `QueryError`) are
in `scope`.
"""
