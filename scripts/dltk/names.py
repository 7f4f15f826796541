"""Model and pipeline names: each is a directory, a URL path segment and a command-line argument.

Triton serves a model under its directory name (`/v2/models/<name>/infer`), perf_analyzer and
the verifier take it as `-m <name>`, and Ansible passes it through shell-free argv lists. A name
that is safe in all of them is ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or
`-` (no hidden directory, no option look-alike), at most 128 characters.
"""

from __future__ import annotations

import re

MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
RULE = (
    "use ASCII letters, digits, '_', '.' or '-' (not first: '.' or '-'), at most 128 "
    "characters: it is a directory, a URL path segment and a command-line argument"
)


def name_problem(name: object) -> str | None:
    """None when `name` is a valid model name, else what is wrong, with `got <name>`."""
    if isinstance(name, str) and MODEL_NAME.fullmatch(name):
        return None
    return f"{RULE}; got {name!r}"
