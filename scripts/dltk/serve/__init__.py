"""`dltk serve`: a local CPU tritonserver (server.py) and the command (cli.py)."""
