"""`python -m gen <command>`: see gen.cli."""
import sys

from gen.cli import main

sys.exit(main())
