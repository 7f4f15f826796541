"""DLTK Deploy's Python side: export models, render and validate Triton repositories,
serve them locally on CPU and verify a running tritonserver."""

__version__ = "0.1.0"
