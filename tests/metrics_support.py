"""Helpers for the metrics tests: a metrics base port whose role's port is free, and a scrape
of a service's /metrics parsed with prometheus_client's own parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from shrinkwatch.metrics import ROLE_OFFSETS, port_for
from shrinkwatch.net import free_port, port_open
from shrinkwatch.settings import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_base(role: str, instances: int = 1) -> int:
    """A `metrics_port` at which `role`'s first `instances` serve on ports free just now."""
    while True:
        base = free_port() - ROLE_OFFSETS[role]
        ports = [base + ROLE_OFFSETS[role] + 10 * i for i in range(instances)]
        if 1024 <= base <= 65000 and ports[-1] <= 65535 and not any(port_open(p) for p in ports[1:]):
            return base


def metrics_url(settings: Settings, role: str, instance: int = 0) -> str:
    """Where `role`'s /metrics answers under these settings."""
    return f"http://{settings.metrics_host}:{port_for(settings, role, instance)}/metrics"


def scrape(url: str, timeout_s: float = 5.0) -> Samples:
    """Every sample at `url`, by (sample name, its labels); raises when nothing answers."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample `name` with exactly these labels (None when absent)."""
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= lab)


def try_scrape(url: str) -> Samples | None:
    """scrape, or None while nothing answers yet."""
    try:
        return scrape(url, timeout_s=2.0)
    except OSError:
        return None
