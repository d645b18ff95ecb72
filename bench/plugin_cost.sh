#!/usr/bin/env bash
# Context cost of the pack as Claude Code itself projects it: the always-on tokens every
# session pays for each skill's and agent's description, and what each costs when it fires.
#
# Usage: bench/plugin_cost.sh [--max-always-on N]
#   --max-always-on N   exit 1 when any component's always-on cost is above N tokens
#
# How: `claude plugin details` reports only installed plugins, so the files a clone ships
# are copied into ~/.claude/skills/<name> under a throwaway HOME (the user's own config
# is never read or touched) and reported as <name>@skills-dir. Works offline. Needs
# `claude` on PATH or in tools/node_modules/.bin (`make setup` installs the pinned one).
set -euo pipefail

max=""
if [ "${1:-}" = "--max-always-on" ]; then
  max="${2:?--max-always-on needs a number}"
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--max-always-on N]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
PATH="$root/tools/node_modules/.bin:$PATH"
if ! command -v claude >/dev/null 2>&1; then
  echo "plugin_cost: claude not found; run 'make setup' (installs it under tools/)" >&2
  exit 2
fi
name=$(sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p' "$root/.claude-plugin/plugin.json" | head -n 1)

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
dest="$home/.claude/skills/$name"
mkdir -p "$dest"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files plus new ones not ignored: what a clone (and so an install) would carry.
  git -C "$root" ls-files --cached --others --exclude-standard -z |
    while IFS= read -r -d '' file; do
      case "/$file" in */node_modules/* | */.venv/*) continue ;; esac
      [ -f "$root/$file" ] || continue
      mkdir -p "$dest/$(dirname "$file")"
      cp -p "$root/$file" "$dest/$file"
    done
else
  cp -Rp "$root/." "$dest/"
fi

echo "\$ claude plugin details $name@skills-dir   # claude $(claude --version)"
report=$(cd "$home" && HOME="$home" claude plugin details "$name@skills-dir")
printf '%s\n' "$report" | sed -n '/^Projected token cost/,$p'

if [ -n "$max" ]; then
  # Rows look like "  dispatch-worker   ~30   ~440"; "~1.6k" means 1600.
  over=$(printf '%s\n' "$report" | awk -v max="$max" '
    /^Per-component/ { table = 1; next }
    table && $2 ~ /^~[0-9.]+k?$/ {
      cost = substr($2, 2); if (cost ~ /k$/) cost = substr(cost, 1, length(cost) - 1) * 1000
      if (cost + 0 > max + 0) print $1 " (" $2 ")"
    }')
  if [ -n "$over" ]; then
    echo "plugin_cost: always-on cost above $max tokens: $(printf '%s' "$over" | tr '\n' ' ')" >&2
    exit 1
  fi
  echo "plugin_cost: every component is at most $max tokens always-on"
fi
