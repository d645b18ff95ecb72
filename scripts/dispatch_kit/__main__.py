"""Allow ``python -m dispatch_kit`` (what bin/dispatch-kit runs from the plugin folder)."""

from dispatch_kit.cli import main

raise SystemExit(main())
