# The two commands: `make book` (build the HTML book, executing every chapter) and `make test`
# (unit tests + nbval on every chapter + the book build with -W). Both create .venv if it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.xcatrec-installed
CHROMIUM_STAMP = $(VENV)/.chromium-checked

export TF_CPP_MIN_LOG_LEVEL = 2
export TF_ENABLE_ONEDNN_OPTS = 0
export PYDEVD_DISABLE_FILE_VALIDATION = 1

.PHONY: setup book test unit nbval book-strict lab outputs clean help

help:
	@echo "make book   build the HTML book into _build/html (executes every chapter)"
	@echo "make test   unit tests + nbval on every chapter + the -W book build"
	@echo "make lab    JupyterLab on chapters/"
	@echo "make outputs  re-execute the chapters and store the outputs nbval checks (# NBVAL_CHECK_OUTPUT cells)"
	@echo "Data: set XCATREC_DATA to a local copy of the public data sets, or let xcatrec download them."

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(STAMP)

book: setup
	$(BIN)/jupyter-book build . -W --keep-going

unit: setup
	$(BIN)/python -m pytest tests -q -m "not book"

nbval: setup
	$(BIN)/python -m pytest --nbval-lax chapters -q -p no:cacheprovider

book-strict: setup
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . -W --keep-going
	$(BIN)/python -m pytest tests/book -q -m book

test: setup
	$(MAKE) unit
	$(MAKE) nbval
	$(MAKE) book-strict

lab: setup
	$(BIN)/jupyter lab chapters/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)  # containers often run as root

outputs: setup
	$(BIN)/python -m xcatrec.book chapters/*.ipynb

clean:
	rm -rf _build
