#!/usr/bin/env python
"""Django's command-line utility for Loupe."""

import os
import sys
from pathlib import Path


def main() -> None:
    # platform/ is a source root (never a package); make it importable without an install too.
    root = Path(__file__).resolve().parent
    for path in (root / "platform", root):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.django.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
