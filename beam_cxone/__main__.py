"""`python -m beam_cxone`: see beam_cxone.cli."""

import sys

from beam_cxone.cli import main

if __name__ == "__main__":
    sys.exit(main())
