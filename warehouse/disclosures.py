"""The disclosure register and subject access requests (owner of `disclosures` and
`access_requests`)."""

from __future__ import annotations
