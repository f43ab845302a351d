"""``python -m streamrec.cli``: the console script, for images and child processes."""

import sys

from streamrec.cli import main

sys.exit(main())
