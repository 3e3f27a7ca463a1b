"""The alert email, by job: `templates` writes each message (an incident, the hourly summary,
a camera, the digest, a test), `smtp` sends them, `chart` draws the digest's chart and
`thumbnails` makes the digest's small snapshots."""
