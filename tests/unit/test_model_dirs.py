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


def found(root: str, names: list[str]) -> list[dict[str, str]]:
    return [{"path": f"{root}/{n}"} for n in names]


def test_what_the_role_copies_keeps_and_removes() -> None:
    """Rendered mnist and pipe; the host has mnist (its model file differs), a TensorRT model whose
    plan changes (engine preview) and an old model the manifest dropped."""
    changes = md.triton_model_repo_changes(
        {
            "staged": found(STAGE, ["pipe", "mnist", "mnist_trt_fp16"]),
            "present": found(REPO, ["mnist", "old", "mnist_trt_fp16"]),
            "stage_files": listing(STAGE, RENDERED),
            "host_files": listing(REPO, {**RENDERED, "mnist/1/model.onnx": "b2"}),
            "engine_preview": [
                {"changed": True, "item": {"triton_model": "mnist_trt_fp16"}},
                {"changed": False, "item": {"triton_model": "mnist_trt_tf32"}},
            ],
            "stage_dir": STAGE,
            "repo_dir": REPO,
        }
    )
    assert changes["models"] == ["mnist", "mnist_trt_fp16", "pipe"]
    assert changes["present"] == ["mnist", "mnist_trt_fp16", "old"]
    assert changes["differing"] == ["mnist"]
    assert changes["changing"] == ["mnist", "mnist_trt_fp16"], "kept before the copy"
    assert changes["remove"] == ["old"]


def test_a_new_model_is_copied_but_nothing_of_it_is_kept() -> None:
    changes = md.triton_model_repo_changes(
        {"staged": found(STAGE, ["mnist", "pipe"]), "present": [],
         "stage_files": listing(STAGE, RENDERED), "host_files": [], "engine_preview": [],
         "stage_dir": STAGE, "repo_dir": REPO}
    )  # fmt: skip
    assert changes["differing"] == ["mnist", "pipe"] and changes["changing"] == []


def test_published_changes_come_from_what_the_copies_changed() -> None:
    published = md.triton_model_repo_published(
        {
            "copy": [{"changed": True, "item": "pipe"}, {"changed": False, "item": "mnist"}],
            "engine_copy": [{"changed": True, "item": {"triton_model": "mnist_trt_fp16"}},
                            {"changed": True, "item": {"triton_model": "mnist_trt_fp16"}}],
            "remove": [{"changed": True, "item": "old"}, {"changed": False, "item": "gone"}],
        }
    )  # fmt: skip
    assert published == {"changed": ["mnist_trt_fp16", "pipe"], "removed": ["old"]}


def test_auto_instance_kind_follows_the_gpu_trt_engines_found() -> None:
    assert md.triton_model_repo_instance_kind("auto", True) == "gpu"
    assert md.triton_model_repo_instance_kind("auto", "True") == "gpu"
    assert md.triton_model_repo_instance_kind("auto", False) == "cpu"
    assert md.triton_model_repo_instance_kind("cpu", True) == "cpu"
