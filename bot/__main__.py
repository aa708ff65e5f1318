"""`python -m bot` is `yizhan`."""

import sys

from bot.cli import main

sys.exit(main())
