"""dltk_image's record of its last build, so that a converged run skips the build context.

The record (`<dltk_image_build_dir>.built.json` on the host) holds the inputs of the last build
(checksums of the packed sources and the wheel archive, the variant, the NGC release, the base
image's ID) and the image ID the build gave. The image is current when the record holds this
run's inputs and the tag still names that image; anything else (no record, another image under
the tag, a changed file, argument or base) builds again.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any


def _record(slurped: Mapping[str, Any]) -> dict[str, Any]:
    """slurp's result as a dict; {} when the file is missing or not a JSON object."""
    content = slurped.get("content")
    if not content:
        return {}
    try:
        doc = json.loads(base64.b64decode(content))
    except (binascii.Error, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _image_id(images: Iterable[Mapping[str, Any]], ref: str) -> str:
    """The ID of the image tagged `ref` among docker_image_info's images ('' when absent)."""
    for image in images:
        if ref in (image.get("RepoTags") or []):
            return str(image.get("Id", ""))
    return ""


def dltk_image_state(
    slurped: Mapping[str, Any],
    images: Iterable[Mapping[str, Any]],
    ref: str,
    base: str,
    inputs: Mapping[str, Any],
) -> dict[str, Any]:
    """{current, present, why, inputs}: whether the image `ref` is the recorded build of these
    inputs (`present`: whether the tag names any image).

    `slurped` is slurp's result for the record (failed_when: false); `images` the result of
    docker_image_info for the image and its base; `inputs` this run's checksums and arguments
    (the base image's ID is added here)."""
    images = list(images)
    wanted = {**inputs, "base": _image_id(images, base)}
    last = _record(slurped)
    tagged = _image_id(images, ref)
    if not wanted["base"]:
        why = f"to be built: the base image {base} is not on the host yet"
    elif not last:
        why = "to be built: no record of an earlier build"
    elif not tagged:
        why = "to be built: the image is absent"
    elif last.get("image") != tagged:
        why = "to be built: the tag names another image than the recorded build"
    elif last.get("inputs") != wanted:
        changed = sorted(k for k in wanted if (last.get("inputs") or {}).get(k) != wanted[k])
        why = f"to be built: {', '.join(changed) or 'the inputs'} changed since the last build"
    else:
        why = "current (the recorded build of these inputs)"
        return {"current": True, "present": True, "why": why, "inputs": wanted}
    return {"current": False, "present": bool(tagged), "why": why, "inputs": wanted}


def dltk_image_files(v: Mapping[str, Any]) -> dict[str, Any]:
    """Where the build's files go (issue 12 item 5: vars/ holds constants): the sources packed on
    the control node (in TMPDIR), the archives copied beside the build context on the host (not
    into it: docker would send them with the context), the record of the last build, and the
    control-node files the build reads (the role's fast path digests them).

    v: build_dir, tmpdir (TMPDIR, '' for /tmp), host (inventory_hostname), project_dir, sources
    (relative to the project), variant, wheels_archive."""
    build = str(v["build_dir"])
    inputs = [f"{v['project_dir']}/{source}" for source in v["sources"]]
    if v["variant"] == "cpu":
        inputs.append(str(v["wheels_archive"]))
    return {
        "src_tar_local": f"{v.get('tmpdir') or '/tmp'}/dltk-image-{v['host']}.tar",
        "src_tar": f"{build}.src.tar",
        "wheels_tar": f"{build}.wheels.tar",
        "record": f"{build}.built.json",
        "inputs": inputs,
    }


def dltk_image_build_args(v: Mapping[str, Any]) -> dict[str, str]:
    """The docker build arguments: BASE_IMAGE and DLTK_VARIANT; for gpu also DLTK_NGC_RELEASE and,
    with a wheel index set, DLTK_WHEEL_INDEX (pip's index URL instead of PyPI) and, for a
    plain-http index, DLTK_WHEEL_TRUSTED_HOST (its HOST[:PORT]: pip ignores a plain-http index
    it is not told to trust). The cpu variant gets the two arguments scripts/build-images.sh
    passes (its layers stay the ones that script builds): it installs from its wheel archive.

    v: base, variant, release, wheel_index."""
    from urllib.parse import urlsplit

    args = {"BASE_IMAGE": str(v["base"]), "DLTK_VARIANT": str(v["variant"])}
    if v["variant"] != "gpu":
        return args
    args["DLTK_NGC_RELEASE"] = str(v["release"])
    index = str(v.get("wheel_index") or "")
    if index:
        args["DLTK_WHEEL_INDEX"] = index
        parts = urlsplit(index)
        if parts.scheme == "http":
            args["DLTK_WHEEL_TRUSTED_HOST"] = parts.netloc.rpartition("@")[2]
    return args


def dltk_image_stale(host_paths: Iterable[str], package_dir: str, context_dir: str) -> list[str]:
    """The host's files under the build context's scripts/dltk that the project's package
    (package_dir on the control node) does not have; bytecode caches are not the package's."""
    import os

    expected = set()
    for top, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in dirs + [f for f in files if not f.endswith(".pyc")]:
            expected.add(
                os.path.join(context_dir, os.path.relpath(os.path.join(top, name), package_dir))
            )
    return [path for path in host_paths if path not in expected]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "dltk_image_state": dltk_image_state,
            "dltk_image_files": dltk_image_files,
            "dltk_image_stale": dltk_image_stale,
            "dltk_image_build_args": dltk_image_build_args,
        }
