"""`shrinkwatch privacy report`: the DPIA annex and the signage text from the site file."""

from __future__ import annotations
