-- Opening hours, CONTRACTS §2: NULL = unknown (never "after hours"), '{}' = closed every day.
-- Until now an empty object meant "no hours given" and the engine treated it as always open,
-- so existing empty hours become NULL: the same behaviour under the new meaning.
ALTER TABLE stores ALTER COLUMN hours DROP NOT NULL, ALTER COLUMN hours DROP DEFAULT;
UPDATE stores SET hours = NULL WHERE hours = '{}'::jsonb;
