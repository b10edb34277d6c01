"""`python -m snn`: see snn/cli.py."""
import os
import sys

try:
    from .cli import EXIT_INTERRUPTED, main
except KeyboardInterrupt:  # Ctrl-C while starting up: the same one line and code as later on
    print("python -m snn: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)

code = main()
if code == EXIT_INTERRUPTED:
    # The one line is printed and temporary files are gone. Leave without the interpreter's
    # shutdown: after a Ctrl-C inside torch it sometimes ended the process by SIGINT (-2)
    # instead of exit code 130.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)
sys.exit(code)
