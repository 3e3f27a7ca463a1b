-- Who is sending an alert: a sender claims outbox rows as its PostgreSQL session
-- (pg_backend_pid()). A row is `sending` only while that session lives; when it is gone
-- (the sender was killed, its machine lost), any other sender, or the same one restarted,
-- puts the row back to `pending`. Without it a second dispatcher starting up could not
-- tell a dead sender's rows from a live one's, and would send those twice.
ALTER TABLE alert_outbox ADD COLUMN claimed_by integer;
