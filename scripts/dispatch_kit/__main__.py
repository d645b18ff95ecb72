"""Allow ``python -m dispatch_kit`` (what bin/dispatch-kit runs from the plugin folder)."""

import sys

from dispatch_kit.cli import main

code = main()
if sys.argv[1:2] == ["hook"]:  # a hook's process skips the interpreter's teardown
    from dispatch_kit.cli.hook import end_process

    end_process(code)
raise SystemExit(code)
