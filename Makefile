# The README's two commands: `make run` and `make test`. Each does its own set-up.
.PHONY: run test setup setup-dev bench lint screenshots package package-lite wheel

run: setup
	.venv/bin/cnndesk

# the import contracts (pyproject.toml [tool.importlinter]) first: seconds, and a broken layer is named
test: setup-dev
	.venv/bin/lint-imports
	QT_QPA_PLATFORM=offscreen QT_LOGGING_RULES="qt.multimedia.*=false" .venv/bin/python -m pytest -q

# the app alone: no test tools, no cluster extras (Ray); `make test` adds them. Both end with the
# default model's verified ONNX export in resources/onnx (cnndesk.prepare; skipped when there), so
# the first answer takes about two seconds even with an empty cache (a failed export only costs
# that: make goes on, the app exports later)
setup:
	@scripts/setup.sh
	-@.venv/bin/python -m cnndesk.prepare

setup-dev:
	@scripts/setup.sh dev,cluster,export
	-@.venv/bin/python -m cnndesk.prepare

bench: setup-dev
	.venv/bin/python bench/bench_classify.py
	.venv/bin/python bench/bench_startup.py
	.venv/bin/python bench/bench_gui.py
	.venv/bin/python bench/bench_camera.py

lint: setup-dev
	.venv/bin/ruff check cnndesk tests bench scripts
	.venv/bin/lint-imports

screenshots: setup-dev
	QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py
	QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots_label.py

# the one-folder app, self-tested; on Linux also a .deb and a .tar.gz of it (dist/, docs/packaging.md)
package:
	packaging/build.sh full

package-lite:
	packaging/build.sh lite

# a wheel that carries resources/ and the verified ONNX export (a plain `pip install` of it answers at once)
wheel: setup
	.venv/bin/python -m pip wheel --no-deps --no-build-isolation -w dist .
