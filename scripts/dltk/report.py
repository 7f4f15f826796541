"""Print saved `dltk verify` JSON reports as the verifier's tables.

python -m dltk.report DIR_OR_FILE [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console

from dltk.perf import PerfRow
from dltk.verify.records import Check
from dltk.verify.report import checks_table, perf_table


def report_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.json")) if p.is_dir() else [p])
    return files


def print_report(report: dict, console: Console) -> None:
    console.print(
        f"[bold]{report['model']}[/] on {report['url']} "
        f"(triton {report.get('server', {}).get('version', '?')}): "
        + ("[green]all checks passed[/]" if report["passed"] else "[bold red]FAILED[/]")
    )
    console.print(checks_table([Check(**c) for c in report["checks"]]))
    perf = report.get("perf") or {}
    if perf.get("rows"):
        rows = [PerfRow(**r) for r in perf["rows"]]
        title = f"perf_analyzer {report['model']} ({perf['protocol']}, batch {perf['batch_size']})"
        console.print(perf_table(rows, title))


def main(argv: list[str]) -> int:
    files = report_files(argv)
    if not files:
        print(
            "usage: python -m dltk.report DIR_OR_FILE [...] (no JSON report found)", file=sys.stderr
        )
        return 2
    console = Console()
    passed = True
    for path in files:
        report = json.loads(path.read_text())
        console.print(f"[dim]{path}[/]")
        print_report(report, console)
        passed = passed and bool(report["passed"])
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
