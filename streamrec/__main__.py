"""`python -m streamrec`: the same CLI as the `streamrec` script, for environments without scripts on PATH."""

import sys

from streamrec.cli import main

sys.exit(main())
