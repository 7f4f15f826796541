"""`dltk mirror`: what air-gapped hosts need. apt_mirror.py is the command (`build`: signed apt
mirrors, `spec`: stand-in repositories, `plan`: the bill of materials, `images`: the bill's images
into a registry or archives, `wheels`: wheelhouses and PEP 503 indexes); apt_repo.py writes the
repositories; plan.py lists what an inventory's hosts need (images, apt packages, wheels, models)
from their variables, which hostvars.py has ansible-playbook resolve; images.py pushes or saves
the images of that list; wheels.py says which wheels the project installs and indexes them.
"""
