"""`dltk profile`: the PyTorch profiler and Nsight Systems (cli.py, the command)."""
