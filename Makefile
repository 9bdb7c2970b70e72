PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser test test-slow test-transformers demo demo-check lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# tests/test_app.py drives the web app in Debian's Chromium: install it where it is missing and we are root (CI);
# elsewhere those tests skip, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is not installed (and cannot be here): the browser tests will skip"

# The Ray tests (a local Ray runtime, about a minute on 2 quiet cores, 4 on busy ones) run with the slow tests, in a
# pytest process of their own: a Ray driver keeps gRPC threads after ray.shutdown(), and a process forked later from
# one with those threads can hang on a lock they held.
test: $(STAMP) browser
	$(PY) -m pytest -q -rfEs -p no:cacheprovider -m "not slow" --ignore=tests/transformers_common \
		--ignore=tests/test_ray_data.py tests

# transformers' own common model tests (ModelTesterMixin, ConfigTester) on our models, from the source archive of the
# installed transformers on PyPI (cached in .cache/transformers/); see tests/transformers_common/conftest.py.
TRANSFORMERS_CACHE := .cache/transformers
test-transformers: $(STAMP)
	@version=$$($(PY) -c 'import transformers; print(transformers.__version__)'); \
	root=$(TRANSFORMERS_CACHE)/transformers-$$version; \
	if [ ! -f $$root/tests/test_modeling_common.py ]; then \
		$(PY) -m pip download --quiet --no-deps --no-binary :all: transformers==$$version -d $(TRANSFORMERS_CACHE) && \
		tar -xzf $(TRANSFORMERS_CACHE)/transformers-$$version.tar.gz -C $(TRANSFORMERS_CACHE) transformers-$$version/tests; \
	fi
	$(PY) -m pytest -q -p no:cacheprovider tests/transformers_common

# Tests too long for every run (the demo's claims, which CI checks with demo-check; see tests/test_demo.py) and the
# Ray tests.
test-slow: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow --ignore=tests/test_ray_data.py tests
	$(PY) -m pytest -q -p no:cacheprovider tests/test_ray_data.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: $(STAMP)
	$(VENV)/bin/actionclip demo --output-dir demo_output

# The demo as CI runs it: no progress bars, and a failed check of the report fails the target.
demo-check: $(STAMP)
	$(VENV)/bin/actionclip demo --output-dir demo_output --quiet --strict

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info demo_output
