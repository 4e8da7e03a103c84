# Set-up and the two things a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install browser clean

$(BIN)/dissect: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/dissect

demo: install
	$(BIN)/dissect demo --overwrite

test: install browser
	$(BIN)/python -m pytest -q

# Debian's chromium, for the headless-browser check of the report (tests/test_report_browser.py);
# installed where this user may, else that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "chromium is not installed: the report's browser check will be skipped"

clean:
	rm -rf $(VENV) build *.egg-info
