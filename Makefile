# The two set-up commands of the README. Both create .venv when it is missing and install into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast fuzz install clean browser

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch/torchvision first, pinned: these exact builds install from the local mirror, where any
# other route downloads several GB.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet torch==2.14.1 torchvision==0.29.1
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m clipproof.demo

# Test processes (pytest-xdist): most tests run one Python thread, so two processes keep two
# cores busy (the suite 356 -> 242 s, test-fast 86 -> 68 s on a 2-core machine; distributing
# whole files instead was 310 s: the large ones then run alone). JOBS=0 runs in this process.
JOBS ?= 2

# The whole suite (under 10 minutes on 2 cores). The browser tests use Debian's chromium: tried
# once (apt, where this user may), skipped where it cannot be had.
test: $(STAMP) $(VENV)/.browser
	$(PY) -m pytest -q -p no:cacheprovider -n $(JOBS)

# The edit-test loop: everything but what trains models, starts new processes or runs a bundled
# model at length, and a fifth of the hostile corpus (under 2 minutes).
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n $(JOBS) -m "not slow"

# Fuzz the credentials-only verify path (atheris) for FUZZ_SECONDS, from the C2PA fixtures; an
# input that gives exit 70 or runs past 10 s is saved in .fuzz/ and fails the run.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(PIP) install --quiet 'atheris>=2.3'
	mkdir -p .fuzz/corpus
	$(PY) -m fuzz.verify_credentials -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=.fuzz/ .fuzz/corpus tests/fixtures/c2pa

clean:
	rm -rf $(VENV) build *.egg-info

# The browser the HTML report and desk tests drive: Debian's chromium and chromedriver (never a
# downloaded build). Without them those two tests are skipped.
browser:
	apt-get install -y chromium chromium-driver

$(VENV)/.browser: | $(PY)
	command -v chromedriver >/dev/null || apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
		echo "chromium not installed: the two browser tests will be skipped (make browser)"
	touch $@
