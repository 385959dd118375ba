#!/usr/bin/env python3
"""Keeps the chart's copies of the alert rules and the Grafana dashboard in step with their
sources. Helm reads only files inside the chart directory (a symlink that points outside is
followed, but a dangling one breaks loading the whole chart), so the chart carries copies:

  deploy/prometheus/sluice-rules.yaml    -> deploy/helm/sluice/files/sluice-rules.yaml
  deploy/grafana/sluice-dashboard.json   -> deploy/helm/sluice/files/sluice-dashboard.json

  tests/deploy/chart_files.py          exit 1 and name every copy that differs from its source
  tests/deploy/chart_files.py --write  copy (or remove a copy whose source is gone)

The chart's templates render the PrometheusRule and the dashboard ConfigMap only when their
copy exists, so the chart works before either source does."""
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sluice"
COPIES = {
    ROOT / "deploy" / "prometheus" / "sluice-rules.yaml": CHART / "files" / "sluice-rules.yaml",
    ROOT / "deploy" / "grafana" / "sluice-dashboard.json": CHART / "files" / "sluice-dashboard.json",
}


def stale():
    """[(source, copy)] for every copy that is missing, different, or left without source."""
    out = []
    for source, copy in COPIES.items():
        if source.exists() != copy.exists() or (
                source.exists() and source.read_bytes() != copy.read_bytes()):
            out.append((source, copy))
    return out


def main():
    pairs = stale()
    if "--write" in sys.argv:
        for source, copy in pairs:
            if source.exists():
                shutil.copyfile(source, copy)
            else:
                copy.unlink()
        return 0
    for source, copy in pairs:
        print(f"{copy.relative_to(ROOT)} is not a copy of {source.relative_to(ROOT)}")
    if pairs:
        print("run tests/deploy/chart_files.py --write")
    return 1 if pairs else 0


if __name__ == "__main__":
    sys.exit(main())
