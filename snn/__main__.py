"""`python -m snn`: see snn/cli.py."""
import sys

from .cli import main

sys.exit(main())
