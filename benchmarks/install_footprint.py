"""Install size: the full install (`make install`: `.[dev,export]`, PyTorch and Ultralytics)
against the store box's (`make install-store`: `.[store]`, OpenVINO only).

Target (issue 21): <= 1.5 GB installed for the store box (the full install: 7.4 GB).
Measures existing virtual environments, or makes the store's in a temporary folder with
`pip install .[store]` (PyPI). Prints each one's site-packages size (every file once, as
`du` counts), the whole venv, its ten largest distributions, whether PyTorch is in it, and
the ratio store ÷ full. The detector's memory with each: benchmarks/detector_memory.py.
Usage: python -m benchmarks.install_footprint [--full .venv] [--store .venv-store | --make-store]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.common import machine
from shrinkwatch.settings import REPO_ROOT

GB = 1e9
MB = 1e6


def tree_bytes(root: Path) -> int:
    """Bytes of every regular file under root, each inode once (as `du --apparent-size` counts)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in root.rglob("*"):
        try:
            stat = path.lstat()
        except OSError:
            continue
        if path.is_symlink() or not path.is_file() or (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        total += stat.st_size
    return total


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        msg = f"no site-packages under {venv}"
        raise SystemExit(msg)
    return found[0]


def by_distribution(site: Path) -> Counter[str]:
    """Bytes installed per distribution, from each one's RECORD."""
    sizes: Counter[str] = Counter()
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0]
        for line in record.read_text(errors="replace").splitlines():
            path = site / line.split(",")[0]
            if path.is_file() and not path.is_symlink():
                sizes[name] += path.stat().st_size
    return sizes


def has_module(venv: Path, module: str) -> bool:
    python = venv / "bin" / "python"
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", probe], check=False).returncode == 0


def make_store_venv(where: Path) -> Path:
    """`make install-store`'s steps into `where`: a venv with `pip install .[store]`."""
    venv = where / "venv-store"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"{REPO_ROOT}[store]"], check=True)
    return venv


def report(label: str, venv: Path) -> int:
    site = site_packages(venv)
    size, whole = tree_bytes(site), tree_bytes(venv)
    print(f"{label}: {venv}")
    print(f"  site-packages {size / GB:.2f} GB; the whole venv {whole / GB:.2f} GB")
    print(
        f"  torch: {'yes' if has_module(venv, 'torch') else 'no'}; "
        f"ultralytics: {'yes' if has_module(venv, 'ultralytics') else 'no'}; "
        f"openvino: {'yes' if has_module(venv, 'openvino') else 'no'}"
    )
    print(
        "  largest distributions: "
        + ", ".join(f"{name} {n / MB:.0f} MB" for name, n in by_distribution(site).most_common(10))
    )
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=Path, default=REPO_ROOT / ".venv")
    parser.add_argument("--store", type=Path, default=REPO_ROOT / ".venv-store")
    parser.add_argument("--make-store", action="store_true", help="make the store venv in a temporary folder")
    args = parser.parse_args()
    print(f"# installed size, full vs store box; {machine()}", flush=True)
    full = report("full install (.[dev,export])", args.full)
    with tempfile.TemporaryDirectory(prefix="store-venv-") as tmp:
        store_venv = args.store
        if args.make_store or not (store_venv / "bin" / "python").exists():
            print("making the store venv (pip install .[store]) ...", flush=True)
            store_venv = make_store_venv(Path(tmp))
        store = report("store box (.[store])", store_venv)
    print(f"store / full = {store / full:.3f}; store {store / GB:.2f} GB (target <= 1.5 GB)")


if __name__ == "__main__":
    main()
