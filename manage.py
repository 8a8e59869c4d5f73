#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    # Production unless told otherwise: a forgotten variable must not serve DEBUG pages signed with a
    # committed key. `make run` and `make test` name config.settings.dev / .test themselves.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
