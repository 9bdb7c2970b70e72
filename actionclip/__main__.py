"""``python -m actionclip``: the `actionclip` command (`actionclip.commands.main`), for launchers that run modules."""

import sys

from .commands import main

sys.exit(main())
