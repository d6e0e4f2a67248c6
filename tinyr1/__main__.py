"""``python -m tinyr1`` is the ``tinyr1`` command."""
import sys

from tinyr1.cli import main

sys.exit(main())
