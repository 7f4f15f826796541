"""`dltk mirror`: what air-gapped hosts need. apt_mirror.py is the command (`build`: signed apt
mirrors, `spec`: stand-in repositories, `plan`: the bill of materials); apt_repo.py writes the
repositories; plan.py lists what an inventory's hosts need (images, apt packages, wheels, models)
from their variables, which hostvars.py has ansible-playbook resolve.
"""
