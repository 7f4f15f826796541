"""`dltk drill`: fault drills on a sandbox host under load (cli.py, the command)."""
