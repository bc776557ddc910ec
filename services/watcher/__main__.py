"""`python -m services.watcher PATH --url URL`: the watcher as a process of its own."""

import sys

from services.watcher.main import main

sys.exit(main())
