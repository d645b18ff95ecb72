# Two entry points for a fresh machine (Python 3.11+, pip, npm):
#   make demo   set up, then run the whole loop on the bundled example
#   make test   set up, then run every check CI runs
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := tools/node_modules/.installed
DEMO_OUT ?= demo-out

.PHONY: setup demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Not `npm ci`: the registry reachable here serves each CLI's native binary for
# this platform only, so no lock can list every platform's optional package, and
# `npm ci` refuses such a lock. `npm install` installs exactly the locked versions
# and must leave the lock as it is: a changed lock fails the build.
$(NODE_STAMP): tools/package.json tools/package-lock.json
	cp tools/package-lock.json tools/.package-lock.before
	cd tools && npm install --no-audit --no-fund --loglevel=error
	cmp -s tools/package-lock.json tools/.package-lock.before || \
	  { echo "tools/package-lock.json changed on install: run npm install in tools/ and commit it" >&2; exit 1; }
	rm -f tools/.package-lock.before
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/dispatch-kit demo --out $(DEMO_OUT)

test: setup
	$(BIN)/ruff check scripts tests bench bin/dispatch-kit
	$(BIN)/dispatch-kit manifests --check
	$(BIN)/dispatch-kit lint .
	# The tests call the tools `make setup` installed (agentskills, claude) by name:
	# put both install folders first, so a global copy can neither hide a
	# missing install nor stand in for the pinned version.
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/tools/node_modules/.bin:$$PATH" $(BIN)/pytest

clean:
	rm -rf $(VENV) tools/node_modules $(DEMO_OUT)
