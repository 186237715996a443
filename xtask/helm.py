#!/usr/bin/env python3
"""Render and lint charts/serviceportal with real Helm (the Helm Go SDK via PyPI helm-python-sdk).

Usage:
  helm.py template CHART VALUES_FILE RELEASE NAMESPACE   print the rendered manifests as one YAML stream
  helm.py lint CHART VALUES_FILE NAMESPACE                `helm lint --strict`; exit 1 on any warning or error
  helm.py time CHART RELEASE NAMESPACE VALUES_FILE...     render once per values file; print the seconds taken
  helm.py time-each CHART RELEASE NAMESPACE VALUES_FILE N  render the first N tenants of VALUES_FILE one per
                                                          render (as one release per tenant would); print seconds
  helm.py package CHART DEST_DIR VERSION                  `helm package` with chart version and appVersion VERSION;
                                                          print the path of the .tgz
  helm.py available                                       exit 0 when Helm can be loaded
"""
import sys
import time


def load_values(helm, path):
    with open(path, encoding="utf-8") as f:
        return helm.values_from_yaml(f.read())


def render(helm, chart, values, release, namespace):
    manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    out = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt") or not manifests[path].strip():
            continue
        out.append(f"---\n# Source: {path}\n{manifests[path].strip()}\n")
    return "".join(out)


def main(argv):
    import helm_python as helm

    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "available":
        print(f"helm sdk {helm.helm_sdk_version()}")
        return 0
    if cmd == "package":
        chart_dir, dest, version = args
        print(helm.package(chart_dir, destination=dest, version=version, app_version=version))
        return 0
    if cmd == "template":
        chart_dir, values_file, release, namespace = args
        chart = helm.Chart.load(chart_dir)
        sys.stdout.write(render(helm, chart, load_values(helm, values_file), release, namespace))
        return 0
    if cmd == "lint":
        chart_dir, values_file, namespace = args
        report = helm.lint(chart_dir, load_values(helm, values_file), strict=True, namespace=namespace)
        problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
        for m in report.get("messages") or []:
            print(f"[{m.get('severity')}] {m.get('path')}: {m.get('error')}")
        for e in report.get("errors") or []:
            print(f"error: {e}")
        return 1 if problems or report.get("errors") else 0
    if cmd == "time":
        chart_dir, release, namespace, *files = args
        chart = helm.Chart.load(chart_dir)
        values = [load_values(helm, f) for f in files]
        start = time.perf_counter()
        for v in values:
            render(helm, chart, v, release, namespace)
        print(f"{time.perf_counter() - start:.6f}")
        return 0
    if cmd == "time-each":
        chart_dir, release, namespace, values_file, n = args
        chart = helm.Chart.load(chart_dir)
        values = load_values(helm, values_file)
        tenants = values.get("tenants") or {}
        slugs = sorted(tenants)[: int(n)]
        start = time.perf_counter()
        for slug in slugs:
            one = dict(values)
            one["tenants"] = {slug: tenants[slug]}
            render(helm, chart, one, release, namespace)
        print(f"{len(slugs)} {time.perf_counter() - start:.6f}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
