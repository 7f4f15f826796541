"""Version picking of roles/apt_pinned_repo's module apt_pinned_version (issue 12, item 2).

The module lives in the collection's plugins/modules/; it is loaded here by path.
Madison texts are the shapes apt-cache prints for Docker's, NVIDIA's flat and Debian's sources.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from role_plugins import load_role_plugin

apv = load_role_plugin("plugins/modules/apt_pinned_version.py")
MODULE_PATH = Path(apv.__file__)

DOCKER = """\
 docker-ce | 5:29.0.0-1~debian.12~bookworm | https://d.docker.com bookworm/stable amd64 Packages
 docker-ce | 5:28.5.1-1~debian.12~bookworm | https://d.docker.com bookworm/stable amd64 Packages
 docker-ce | 5:28.5.10-1~debian.12~bookworm | https://d.docker.com bookworm/stable amd64 Packages
"""
TOOLKIT = """\
nvidia-container-toolkit |   1.18.0-1 | https://nvidia.github.io/lnc/amd64  Packages
nvidia-container-toolkit |   1.17.8-1 | https://nvidia.github.io/lnc/amd64  Packages
"""
NSIGHT = """\
nsight-systems | 2022.4.2.1+dfsg-1 | http://deb.debian.org bookworm/non-free amd64 Packages
nsight-systems | 2022.4.2.1+dfsg-1 | http://deb.debian.org bookworm/non-free Sources
nsight-systems | 2022.1.1.1+dfsg-1 | http://deb.debian.org bookworm-bpo/non-free amd64 Packages
"""


def test_parse_offered_keeps_binary_lines_of_the_package_in_apt_order() -> None:
    text = NSIGHT + "nsight-systems-cli | 2025.3.1.90-1 | http://x / Packages\n"
    assert apv.parse_offered(text, "nsight-systems") == ["2022.4.2.1+dfsg-1", "2022.1.1.1+dfsg-1"]


def test_parse_offered_of_nothing_is_empty() -> None:
    assert apv.parse_offered("", "docker-ce") == []
    assert apv.parse_offered("N: Unable to locate package docker-ce\n", "docker-ce") == []


@pytest.mark.parametrize(
    ("version", "match", "expected"),
    [
        ("1.17.8-1", "auto", "1.17.8-1"),
        ("1.17.8-1", "exact", "1.17.8-1"),
        ("1.17.8", "exact", ""),
        ("1.17.*", "auto", "1.17.8-1"),
        ("1.*", "prefix", "1.18.0-1"),
        ("1.99.0-1", "auto", ""),
    ],
)
def test_pick_toolkit(version: str, match: str, expected: str) -> None:
    assert apv.pick(apv.parse_offered(TOOLKIT, "nvidia-container-toolkit"), version, match) == (
        expected
    )


def test_upstream_match_takes_any_revision_but_not_a_longer_version() -> None:
    offered = apv.parse_offered(DOCKER, "docker-ce")
    assert apv.pick(offered, "5:28.5.1", "upstream") == "5:28.5.1-1~debian.12~bookworm"
    assert apv.pick(offered, "5:28.5.10", "upstream") == "5:28.5.10-1~debian.12~bookworm"
    assert apv.pick(offered, "5:28.5", "upstream") == ""
    assert apv.matches("5:28.5.1", "5:28.5.1", "upstream")


def test_prefix_picks_the_newest_match() -> None:
    offered = apv.parse_offered(NSIGHT, "nsight-systems")
    assert apv.pick(offered, "2022.*", "auto") == "2022.4.2.1+dfsg-1"
    assert apv.pick(offered, "2022.1.*", "auto") == "2022.1.1.1+dfsg-1"
    assert apv.pick(offered, "2023.1.*", "auto") == ""


def test_exact_is_not_a_prefix() -> None:
    assert not apv.matches("2022.4.2.1+dfsg-1", "2022.4.2.1", "auto")


def test_standard_miss_message_names_the_setting_the_source_and_the_offer() -> None:
    offered = apv.parse_offered(TOOLKIT, "nvidia-container-toolkit")
    msg = apv.miss_message(
        "nvidia-container-toolkit", "1.99.0-1", "nvidia_container_toolkit_version", "URL", offered
    )
    assert msg == (
        "nvidia_container_toolkit_version=1.99.0-1 is not in URL; it offers "
        "nvidia-container-toolkit 1.18.0-1, 1.17.8-1. "
        "Set nvidia_container_toolkit_version to one of them. "
        "Nothing was installed."
    )
    assert "\n" not in msg


def test_miss_message_with_nothing_offered_and_a_caller_text() -> None:
    assert "offers docker-ce nothing." in apv.miss_message("docker-ce", "5:1", "v", "W", [])
    custom = apv.miss_message(
        "p", "2.*", "v", "W", ["1.0"], "{package} {version} not here; offered: {offered}"
    )
    assert custom == "p 2.* not here; offered: 1.0"


def test_miss_message_lists_at_most_eight_versions() -> None:
    msg = apv.miss_message("p", "9", "v", "W", [f"1.{i}" for i in range(12)])
    assert "1.7, ..." in msg and "1.8" not in msg


def _run_module(args: dict) -> dict:
    """Run the module file as Ansible runs it (JSON args on stdin); returns its JSON result."""
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": args})
    out = subprocess.run(
        [sys.executable, str(MODULE_PATH)],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(out.stdout)


def test_module_returns_the_picked_version_unchanged() -> None:
    result = _run_module(
        {"package": "docker-ce", "version": "5:28.5.1", "match": "upstream", "madison": DOCKER}
    )
    assert result["version"] == "5:28.5.1-1~debian.12~bookworm"
    assert result["changed"] is False
    assert "failed" not in result


def test_module_fails_with_one_line_on_a_miss() -> None:
    result = _run_module(
        {
            "package": "docker-ce",
            "version": "5:99.0.0",
            "match": "upstream",
            "variable": "docker_engine_upstream_version",
            "where": "file:///srv/m (suite bookworm)",
            "madison": DOCKER,
        }
    )
    assert result["failed"] is True
    assert result["msg"].startswith(
        "docker_engine_upstream_version=5:99.0.0 is not in file:///srv/m (suite bookworm); "
        "it offers docker-ce 5:29.0.0-1~debian.12~bookworm, 5:28.5.1-1~debian.12~bookworm"
    )
    assert result["offered"][0] == "5:29.0.0-1~debian.12~bookworm"
