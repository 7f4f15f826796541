"""`dltk engines`: plan TensorRT engine builds (plan.py, pure) and the command (cli.py)."""
