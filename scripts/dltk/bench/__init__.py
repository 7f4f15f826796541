"""`dltk bench`: runtime speed, TensorRT engines, serving efficiency and converged re-runs (cli.py,
the command).
"""
