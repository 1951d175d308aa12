"""``python -m quantify`` runs the ``quantify`` command."""

import sys

from quantify.cli import main

sys.exit(main())
