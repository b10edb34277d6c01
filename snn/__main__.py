"""`python -m snn`: see snn/cli.py."""
import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while starting up: the same one line and code as later on
    print("python -m snn: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
