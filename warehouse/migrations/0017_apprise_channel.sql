-- A fourth channel: any service the Apprise library speaks (Slack, Microsoft Teams,
-- Discord, Telegram, ...), given as one Apprise URL per recipient. One URL, one target:
-- Apprise's notify() answers one yes/no for all its targets, so a recipient with two
-- would have the outbox resend to the one that worked whenever the other failed. A chain
-- that wants Slack and Teams makes two recipients. The URL holds the service's token:
-- keep it like a password.
ALTER TABLE alert_recipients ADD COLUMN apprise_url text;
ALTER TABLE alert_recipients DROP CONSTRAINT alert_recipients_channels_check;
ALTER TABLE alert_recipients ADD CONSTRAINT alert_recipients_channels_check
    CHECK (channels <@ ARRAY['email', 'sms', 'webhook', 'apprise']);
ALTER TABLE alert_outbox DROP CONSTRAINT alert_outbox_channel_check;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_channel_check
    CHECK (channel IN ('email', 'sms', 'webhook', 'apprise'));
