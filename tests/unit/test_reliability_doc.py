"""docs/reliability.md "Bad input": the table cannot rot.

Every row names a test; each pytest node id must be collected by pytest, each molecule case must
be a case of that scenario's file, and the messages of the `dltk` and role-variable rows must be
the ones their tests expect (so a changed message changes the table too).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
RUN_DIR = "/tmp/dltk-bad-input"  # the directory of the runs the doc's messages come from
MIN_ROWS = 30


def bad_input_rows() -> list[list[str]]:
    text = DOC.read_text()
    section = text.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and cells[0].isdigit():
            rows.append(cells)
    return rows


def code(cell: str) -> str:
    """The text of a cell that is one code span (`x` or `` x ``)."""
    match = re.fullmatch(r"(`+) ?(.*?) ?\1", cell)
    assert match, f"not a code span: {cell}"
    return match.group(2)


def collected(files: set[str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + sorted(files),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {line for line in proc.stdout.splitlines() if "::" in line}


def test_the_table_has_enough_numbered_rows() -> None:
    rows = bad_input_rows()
    assert len(rows) >= MIN_ROWS
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    assert all(len(row) == 5 and all(row) for row in rows), [r for r in rows if len(r) != 5]


def test_every_named_test_exists() -> None:
    refs = [code(row[4]) for row in bad_input_rows()]
    pytest_refs = {ref for ref in refs if "::" in ref}
    missing = pytest_refs - collected({ref.split("::")[0] for ref in pytest_refs})
    for ref in refs:
        if "::" in ref:
            continue
        path, case = ref.split(": ", 1)
        assert path.startswith("molecule/"), ref
        if not re.search(rf"- name: {re.escape(case)}\n", (ROOT / path).read_text()):
            missing.add(ref)
    assert not missing, sorted(missing)


def test_messages_are_the_ones_the_tests_expect() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    unit = importlib.import_module("tests.unit.test_bad_input").CASES
    role = importlib.import_module("tests.integration.test_role_bad_input").CASES
    checked = 0
    for row in bad_input_rows():
        ref, message = code(row[4]), code(row[3]).replace(" ⏎ ", "\n")
        case = re.search(r"\[(.*)\]$", ref)
        if ref.startswith("tests/unit/test_bad_input.py::"):
            assert case and message == unit[case.group(1)][1].format(tmp=RUN_DIR), row
        elif ref.startswith("tests/integration/test_role_bad_input.py::"):
            assert case and role[case.group(1)][2].format(tmp=RUN_DIR) in message, row
        else:
            continue
        checked += 1
    assert checked == len(unit) + len(role)
