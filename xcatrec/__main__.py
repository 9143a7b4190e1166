"""``python -m xcatrec``: the command-line interface (see :mod:`xcatrec.cli`)."""

from xcatrec.cli import main

raise SystemExit(main())
