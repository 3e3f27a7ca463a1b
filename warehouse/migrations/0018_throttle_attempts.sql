-- Sign-in throttling counts an attempt before its password is checked, in the same
-- transaction that reads the count under a lock on the account and the address
-- (warehouse/users.py): parallel guesses can no longer all be checked before any is
-- counted. An attempt that succeeds takes its own record back, by id.
ALTER TABLE sign_in_failures ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
-- Keys are now 'user:<name>', 'ip:<address>' (sign-in attempts that failed or are being
-- checked) and 'sso:<address>' (single sign-on started from that address).
COMMENT ON TABLE sign_in_failures IS
    'Sign-in attempts that count against a limit: failed or being checked (user:, ip:), single sign-on starts (sso:)';
