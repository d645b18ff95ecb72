"""One reader per input format, each giving ``file:line:col`` for what it refuses.

Every command reads plans, vars files, check results and manifests through these, so a bad
byte, a duplicate key or a nesting bomb is placed and worded the same way wherever it
arrives. Nothing is imported here: each reader is loaded only by the paths that read it.
"""
