"""STAND-IN `tensorrt` module (DLTK Deploy molecule gpu_sim): only the version of TensorRT 10.5.0,
the release of NGC 24.10. There is no TensorRT here: anything else raises ImportError."""

__version__ = "10.5.0"


def __getattr__(name: str) -> object:
    raise ImportError(f"tensorrt STAND-IN has no {name!r}: only __version__ is simulated")
