"""`dltk mirror`: signed apt mirrors and stand-in repositories for air-gapped hosts (apt_mirror.py,
the command; apt_repo.py, the repository writer).
"""
