"""`python -m gen <command>`: see gen.cli."""
import sys

from .cli import main

sys.exit(main())
