# The README's two commands: `make run` (app on its defaults: simulator + SQLite) and `make test`.
# Each creates the virtual environment and installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench screenshots dist selfcheck clean venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/kis-desk

# The suite in parallel (pytest-xdist), one worker per core up to 4, whole files per worker
# (module fixtures such as the PyInstaller bundle are built once): most fault tests wait on
# compressed but real time, so two workers on two cores halve the wall time. PYTEST_ARGS adds.
TEST_WORKERS ?= -n auto --maxprocesses=4 --dist loadfile
test: $(STAMP)
	$(BIN)/python -m pytest $(TEST_WORKERS) $(PYTEST_ARGS)

# bench_gui re-runs itself under xvfb-run (+ openbox) when there is no display: see its docstring.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Every picture in docs/: the window at 1366x768 and 1920x1080, light and dark, with an alert
# showing, its chart, the alert history and the fixed candle chart. Each size on its own Xvfb
# screen with openbox (needs xvfb, xauth, openbox, fonts-nanum); see tools/screenshots.py.
screenshots: $(STAMP)
	$(BIN)/python -m tools.screenshots

# dist/kis-desk/{kis-desk,kis-desk-cli} (GUI + console exe, one shared _internal/); see build.spec.
dist: $(STAMP)
	$(BIN)/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller/onedir build.spec
	@du -sh dist/kis-desk

# dist/onefile/kis-desk: a single self-extracting file (the spec puts it in dist/onefile/).
.PHONY: dist-onefile
dist-onefile: $(STAMP)
	KIS_DESK_ONEFILE=1 $(BIN)/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller/onefile build.spec
	@du -sh dist/onefile/kis-desk*

selfcheck: $(STAMP)
	$(BIN)/kis-desk --self-check

clean:
	rm -rf build dist $(VENV)
