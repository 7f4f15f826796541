"""Fault drills: what a drill measured, its recovery time, and the table in docs/reliability.md.

Pure functions only (the drills themselves are in dltk.drill.faults, the client in
dltk.drill.load): a drill row is computed from the client's request log and the fault's time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

SECTION = "## Fault drills"


@dataclass(frozen=True)
class Request:
    """One request of the load client: when it ended (monotonic s) and whether it succeeded."""

    t: float
    ok: bool


@dataclass
class DrillRow:
    """One drill's result, as printed and written into the table."""

    name: str
    fault: str
    recovery_s: float | None  # None: no successful request after the fault within the bound
    sent: int
    failed: int
    lost: list[str] = field(default_factory=list)  # what did not come back; empty: nothing
    notes: list[str] = field(default_factory=list)  # what happened (error messages, reruns)

    @property
    def passed(self) -> bool:
        return self.recovery_s is not None and not self.lost


def recovery_seconds(requests: Sequence[Request], fault_t: float) -> float | None:
    """Seconds from the fault to the first success after the last failure that followed it.

    0.0 when no request failed after the fault and one succeeded (the fault never interrupted
    serving); None when no request succeeded after the last failure (not recovered).
    """
    after = [r for r in requests if r.t >= fault_t]
    failures = [r.t for r in after if not r.ok]
    if not failures:
        return 0.0 if any(r.ok for r in after) else None
    last_failure = max(failures)
    successes = [r.t for r in after if r.ok and r.t > last_failure]
    if not successes:
        return None
    return round(min(successes) - fault_t, 2)


def count(requests: Sequence[Request]) -> tuple[int, int]:
    """(sent, failed)."""
    return len(requests), sum(1 for r in requests if not r.ok)


def files_lost(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two {relative path: sha256} snapshots of a model repository."""
    lost = []
    missing = sorted(set(before) - set(after))
    added = sorted(set(after) - set(before))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    if missing:
        lost.append("files missing: " + ", ".join(missing))
    if changed:
        lost.append("files differ: " + ", ".join(changed))
    if added:
        lost.append("files added: " + ", ".join(added))
    return lost


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown_table(rows: Sequence[DrillRow]) -> str:
    lines = [
        "| drill | fault | time to recover (s) | requests sent | requests failed | lost | notes |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        recovery = "not recovered" if row.recovery_s is None else f"{row.recovery_s:.2f}"
        lost = "; ".join(row.lost) or "nothing"
        lines.append(
            f"| {row.name} | {_cell(row.fault)} | {recovery} | {row.sent} | {row.failed} "
            f"| {_cell(lost)} | {_cell('; '.join(row.notes))} |"
        )
    return "\n".join(lines) + "\n"


def as_json(rows: Sequence[DrillRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def rows_from_json(text: str) -> list[DrillRow]:
    """The rows `as_json` wrote (pure)."""
    return [DrillRow(**item) for item in json.loads(text)]


def replace_section(document: str, body: str) -> str:
    """`document` with the text under `## Fault drills` (up to the next `## `) set to `body`."""
    lines = document.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == SECTION)
    except StopIteration:
        return document.rstrip("\n") + f"\n\n{SECTION}\n\n{body.rstrip()}\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    head = "".join(lines[: start + 1])
    return head + "\n" + body.rstrip() + "\n" + ("\n" + tail if tail else "")


def play_failure(output: str, limit: int = 300) -> str:
    """The message of the first failed task in ansible-playbook output.

    `fatal: [h]: FAILED! => {"msg": ...}` (JSON result format), or `=> changed=false` followed by
    indented `msg: text` (yaml result format, possibly folded over more-indented lines), or `msg`
    on the fatal line itself; '' when no task failed.
    """
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(("fatal:", "failed:")):
            continue
        if "=> {" in line:  # the JSON result format, on one line or indented over several
            text = line.split("=> ", 1)[1]
            if text.strip() == "{":
                end = next((k for k in range(i + 1, len(lines)) if lines[k] == "}"), i)
                text = "\n".join([text, *lines[i + 1 : end + 1]])
            try:
                result = json.loads(text)
            except ValueError:
                result = {}
            if isinstance(result, dict) and result.get("msg"):
                return " ".join(str(result["msg"]).split())[:limit]
        if "msg:" in line:
            return " ".join(line.split("msg:", 1)[1].split()).strip("'\"")[:limit]
        for j in range(i + 1, len(lines)):
            text = lines[j]
            if text and not text.startswith(" "):
                break
            stripped = text.strip()
            if not stripped.startswith("msg:"):
                continue
            indent = len(text) - len(text.lstrip())
            parts = [stripped[4:].strip().removeprefix(">-").removeprefix("|-").strip()]
            for more in lines[j + 1 :]:
                if not more.strip() or len(more) - len(more.lstrip()) <= indent:
                    break
                parts.append(more.strip())
            return " ".join(" ".join(parts).split()).strip("'\"")[:limit]
        return " ".join(line.split())[:limit]
    return ""
