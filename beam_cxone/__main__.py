"""`python -m beam_cxone`: see beam_cxone.commands."""

import sys

from beam_cxone.console import silence_beam_import_noise

silence_beam_import_noise()  # before beam_cxone.commands imports apache_beam

from beam_cxone.commands import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
