"""Signing a STAND-IN repository leaves no gpg-agent behind (issue 14, item 5).

gpg starts one gpg-agent daemon per home directory on its first key operation and leaves it
running after gpg exits. Each of these tests signs with a throwaway key in its own tmp_path home
and then looks for a process `gpg-agent --homedir <that home>`: any found is a leak.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.mirror.apt_mirror import main
from dltk.mirror.apt_repo import build_spec_repo, throwaway_key

SPEC = {
    "layout": "flat",
    "path": "flat",
    "arch": "amd64",
    "key_path": "flat/key.asc",
    "packages": [
        {
            "name": "tool",
            "version": "1.0-1",
            "description": "tool STAND-IN for tests\nnot a vendor package",
            "files": {"/usr/share/doc/tool/STAND-IN": "stand-in\n"},
        }
    ],
}


def agents_of(home: Path) -> list[int]:
    """PIDs of the gpg-agent processes started for `home` (read from /proc/*/cmdline)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked
            continue
        if Path(argv[0].decode(errors="replace")).name != "gpg-agent":
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "--homedir" in args and args[args.index("--homedir") + 1 :][:1] == [str(home)]:
            found.append(int(cmdline.parent.name))
    return found


def assert_no_agent(home: Path) -> None:
    # gpgconf --kill returns once the agent acknowledged; give it a bounded moment to exit.
    for _ in range(40):
        if not agents_of(home):
            return
        time.sleep(0.05)
    pytest.fail(f"gpg-agent {agents_of(home)} still runs for {home}: the signing step leaked it")


def test_agent_runs_while_the_key_is_in_use(tmp_path: Path) -> None:
    """The check can fail: inside the block gpg has started an agent for the home."""
    home = tmp_path / "gnupg"
    with throwaway_key(home):
        build_spec_repo(SPEC, tmp_path / "out", home)
        assert agents_of(home), "gpg started no agent, so the leak checks below prove nothing"
    assert_no_agent(home)


def test_spec_command_leaves_no_gpg_agent(tmp_path: Path) -> None:
    """`python -m dltk.mirror.apt_mirror spec` (what molecule runs) stops the agent it started."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    home = tmp_path / "gnupg"
    assert main(["spec", str(spec), str(tmp_path / "out"), str(home)]) == 0
    assert (tmp_path / "out" / "flat" / "InRelease").is_file()
    assert_no_agent(home)


def test_agent_is_stopped_when_the_block_fails(tmp_path: Path) -> None:
    """An error while the key is in use (here raised by the test) still stops the agent."""
    home = tmp_path / "gnupg"
    with pytest.raises(DltkError, match="signing failed"), throwaway_key(home):
        assert agents_of(home), "new_key started no agent"
        raise DltkError("signing failed")
    assert_no_agent(home)
