"""``python -m modelport_worker`` is ``python -m modelport_worker.shim``."""

import sys

from .shim import main

sys.exit(main())
