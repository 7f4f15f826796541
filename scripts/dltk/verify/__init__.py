"""`dltk verify`: check a running Triton serves each model correctly (cli.py, the command;
verifier.py, the checks).
"""
