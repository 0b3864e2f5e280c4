"""``python -m arch_gpt.cli``: the same as the ``arch-gpt`` console script."""
import sys

from arch_gpt.cli import main

sys.exit(main())
