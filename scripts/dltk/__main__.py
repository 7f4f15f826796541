import sys

from dltk.cli import main

sys.exit(main())
