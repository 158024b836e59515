# Two commands on a fresh machine: `make run` executes every lab notebook in local mode,
# `make test` runs the linter and the test suite (and first builds, once, the SDK v2 virtualenv of tests/sdk_v2
# under build/). Each creates the virtualenv and the Jupyter kernel when missing: `make run` installs only what the
# workshop kernel needs (requirements.txt), `make test` adds the maintainers' tools (requirements-dev.txt).
# The interpreter .venv is built with: PYTHON=... to choose one, else the first suitable (scripts/find_python).
PYTHON ?=
VENV := .venv
BIN := $(VENV)/bin
KERNEL := recommendation-workshop
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test env dev kernel clean

env: $(STAMP)

dev: $(DEV_STAMP)

# The checkout is installed in editable mode; setuptools warns that a folder named like a package may shadow it,
# which is exactly how this checkout works, so its warning is silenced.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || { python=$$(scripts/find_python $(PYTHON)) && echo "Creating $(VENV) with $$python" && $$python -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet --no-deps --editable .
	@touch $@

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

kernel: $(STAMP)
	@$(BIN)/python -c 'import os, sys; print(f"Python {sys.version.split()[0]} ({os.path.realpath(sys.executable)}) runs the workshop, in $(VENV)")'
	@$(BIN)/python scripts/register_kernel.py --name $(KERNEL) --display-name "Recommendation Workshop"

run: kernel
	$(BIN)/python scripts/run_notebooks.py --kernel $(KERNEL)

test: kernel dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/sdk_v2/build_venv.py
	$(BIN)/python -m pytest

clean:
	rm -rf build
