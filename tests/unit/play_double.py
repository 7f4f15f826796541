"""A TEST DOUBLE of one ansible-playbook run as the benches read it (dltk.drill.host.deploy's
result): its exit code, wall time and output; failure() is what the bench puts in its error."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Play:
    rc: int
    seconds: float
    output: str

    def failure(self) -> str:
        return "the TEST DOUBLE's failure"
