"""`python -m semiad ...` — see semiad.cli."""
from semiad.cli import main

raise SystemExit(main())
