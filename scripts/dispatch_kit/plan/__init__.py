"""The plan: what a mission is made of, read from YAML or JSON and checked before anything runs.

``model`` holds the frozen records every other room works on (Plan, Task, Criterion);
``load`` reads a plan file into them, with a ``file:line:col`` for every refusal; ``vague``
judges exit criteria a shell cannot decide. Nothing is imported here, so a caller that needs
only the records (the runner, the checker) does not pay for the loader's YAML and schema.
"""
