# Set-up and the two things a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast install browser emoji-data spark benchmark-data clean

$(BIN)/dissect: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/dissect

demo: install
	$(BIN)/dissect demo --overwrite

# The suite on every core (pytest-xdist). --dist loadscope with tests/conftest.py's scopes: the tests
# that share a module-scoped fixture (a training, a torchrun) go to one worker, so it is built once;
# any other test is handed out alone to the worker that is nearly done. With the end-to-end trainings
# first (tests/conftest.py) the longest start first and the short ones fill the gaps.
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadscope --no-loadscope-reorder

test: install browser emoji-data spark
	$(PYTEST)

# The edit loop: everything but the end-to-end trainings (tests marked e2e).
test-fast: install
	$(PYTEST) -m "not e2e"

# Debian's chromium, for the headless-browser check of the report (tests/test_report_browser.py);
# installed where this user may, else that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "chromium is not installed: the report's browser check will be skipped"

# Debian's Noto Color Emoji font and Unicode CLDR annotations, for `dissect make-emoji` (its
# Twemoji images come from PyPI with `.[test]`); its tests are skipped, saying why, where they are missing.
emoji-data:
	@{ [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && [ -f /usr/share/unicode/cldr/common/annotations/en.xml ]; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q fonts-noto-color-emoji unicode-cldr-core >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q fonts-noto-color-emoji unicode-cldr-core >/dev/null 2>&1; }; }; } || \
	  echo "fonts-noto-color-emoji / unicode-cldr-core are not installed: the emoji tests will be skipped"

# Debian's Java runtime, pyspark and sqlglot, for `--engine spark` (tests/test_spark.py runs every figure
# query and curation rule on both engines); installed where this user may, else those tests are skipped.
spark: install
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q default-jre-headless >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q default-jre-headless >/dev/null 2>&1; }; }; } || \
	  echo "no Java runtime could be installed: the Spark tests will be skipped"
	@$(BIN)/python -c "import pyspark, sqlglot" 2>/dev/null || $(BIN)/pip install --quiet -e '.[spark]' || \
	  echo "pyspark / sqlglot could not be installed: the Spark tests will be skipped"

# Debian's Fashion-MNIST, for the third benchmark of benchmarks/selection_quality.py (left out,
# with a note, where it cannot be installed).
benchmark-data: install
	@[ -d /usr/share/datasets/fashion-mnist ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; }; } || \
	  echo "dataset-fashion-mnist is not installed: the benchmarks leave Fashion-MNIST out"

clean:
	rm -rf $(VENV) build *.egg-info
