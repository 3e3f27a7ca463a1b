"""The REST API for integrations (issue 22): a case-management system, a SOC or a data team reads
stores, cameras, incidents and analytics through it with an API token, under the same scope rules
as the dashboard."""
