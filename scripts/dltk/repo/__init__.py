"""Triton model repositories: render (config.py, plan.py), validate (validate.py), load and sync on
a server; `dltk repo` (cli.py) and `dltk validate` (validate_cli.py).
"""
