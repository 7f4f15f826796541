"""Bounded runs of the measuring binaries (perf_analyzer, trtexec) with one-line errors.

`run_bounded` runs a command with its output captured as text and kills it after a timeout.
The two ways it can end without an exit code - the timeout, a binary that cannot start - become
one-line DltkErrors worded by the caller; what a non-zero exit means stays with the caller too
(each tool has its own most telling line of output).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dltk.errors import DltkError

Runner = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class Finished:
    """A bounded run that ended: its exit code and its stdout and stderr as one text."""

    returncode: int
    output: str


def run_bounded(
    cmd: Sequence[str],
    timeout_s: float,
    *,
    timed_out: str,
    cannot_start: str,
    env: Mapping[str, str] | None = None,
    runner: Runner = subprocess.run,
) -> Finished:
    """Run `cmd` (killed after `timeout_s`).

    Raises DltkError(`timed_out`) on the timeout and DltkError("`cannot_start`: why") when the
    binary cannot start.
    """
    kwargs: dict[str, Any] = {} if env is None else {"env": dict(env)}
    try:
        proc = runner(list(cmd), capture_output=True, text=True, timeout=timeout_s, **kwargs)
    except subprocess.TimeoutExpired:
        raise DltkError(timed_out) from None
    except OSError as exc:
        raise DltkError(f"{cannot_start}: {exc.strerror}") from None
    return Finished(proc.returncode, f"{proc.stdout}\n{proc.stderr}")
