"""`dltk mirror`: what air-gapped hosts need. apt_mirror.py is the command (`apt`: signed apt
mirrors, `spec`: stand-in repositories, `plan`: the bill of materials, `images`: the bill's images
into a registry or archives, `wheels`: wheelhouses and PEP 503 indexes); apt_sources.py lists
the apt repositories the roles use, apt_aptly.py mirrors and publishes them with aptly,
apt_repo.py does what aptly lacks (flat indexes, STAND-IN repositories, the signing key) with
apt-ftparchive and gpg; plan.py lists what an inventory's hosts need (images, apt packages,
wheels, models) from their variables, which hostvars.py has ansible-playbook resolve; images.py
pushes or saves the images of that list; wheels.py says which wheels the project installs and
indexes them.
"""
