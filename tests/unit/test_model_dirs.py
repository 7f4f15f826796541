"""triton_model_repo copies only the model directories whose rendered files differ from the
host's (plugins/filter/model_dirs.py, issue 12 item 7).

The filter lives in the role (it travels with it); it is loaded here by path. Listings are
shaped as ansible.builtin.find returns them (path, checksum, mode).
"""

from __future__ import annotations

from role_plugins import load_role_plugin

md = load_role_plugin("plugins/filter/model_dirs.py")

STAGE = "/p/roles/triton_model_repo/../../build/model_repo/h1"
REPO = "/srv/repo"


def listing(root: str, files: dict[str, str], mode: str = "0644") -> list[dict[str, str]]:
    return [{"path": f"{root}/{rel}", "checksum": cs, "mode": mode} for rel, cs in files.items()]


RENDERED = {"mnist/config.pbtxt": "a1", "mnist/1/model.onnx": "b1", "pipe/config.pbtxt": "c1",
            "pipe/1/model.py": "d1"}  # fmt: skip


def to_copy(host_files: dict[str, str], mode: str = "0644") -> list[str]:
    return md.models_to_copy(listing(STAGE, RENDERED), listing(REPO, host_files, mode), STAGE, REPO)


def test_a_converged_host_copies_nothing() -> None:
    """Rule: same files, checksums and modes -> nothing to copy (the converged re-run)."""
    assert to_copy(dict(RENDERED)) == []


def test_a_changed_missing_or_new_file_marks_only_its_model() -> None:
    """Rule: one rendered file missing or different on the host -> its model is copied, only it."""
    assert to_copy({**RENDERED, "mnist/1/model.onnx": "b2"}) == ["mnist"]
    assert to_copy({k: v for k, v in RENDERED.items() if k != "pipe/1/model.py"}) == ["pipe"]
    assert to_copy({}) == ["mnist", "pipe"], "a fresh host gets every model"


def test_a_changed_mode_counts_as_a_difference() -> None:
    """Rule: the copy preserves modes, so a file with another mode on the host is copied."""
    assert to_copy(dict(RENDERED), mode="0600") == ["mnist", "pipe"]


def test_files_only_the_host_has_do_not_count() -> None:
    """Rule: TensorRT plans are placed on the host from the engine cache, never rendered; a file
    the render does not make is no reason to copy (as ansible.builtin.copy of a directory)."""
    assert to_copy({**RENDERED, "mnist_trt_fp16/1/model.sm90.plan": "e1"}) == []


def test_unnormalised_roots_compare_equal() -> None:
    """find returns paths under the root as it was given (role_path/../..): both are normalised."""
    staged = listing("/p/build/model_repo/h1", RENDERED)
    assert md.models_to_copy(staged, listing(REPO + "/", RENDERED), STAGE.replace(
        "/roles/triton_model_repo/../..", ""), REPO + "/") == []  # fmt: skip
    assert md.models_to_copy(listing(STAGE, RENDERED), listing(REPO, RENDERED), STAGE, REPO) == []
