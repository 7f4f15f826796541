"""`dltk export`: build the known models as checked ONNX files (cli.py, the command)."""
