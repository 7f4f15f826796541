"""trt_engines' derived values (issue 12 item 5: vars/ holds constants, Python computes): the NGC
release (YY.MM) an image reference is of, "" when it has none (local images)."""

from __future__ import annotations

import re
from typing import Any

_RELEASE = re.compile(r":(\d\d\.\d\d)")


def ngc_release_of(image: str) -> str:
    """nvcr.io/nvidia/tensorrt:YY.MM-py3 -> YY.MM; dltk/triton-cpu:X.Y.Z -> ''."""
    found = _RELEASE.search(str(image))
    return found.group(1) if found else ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"ngc_release_of": ngc_release_of}
