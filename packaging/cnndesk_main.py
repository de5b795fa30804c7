"""PyInstaller entry point: the same as `python -m cnndesk`."""

import logging
import sys

# the full bundle leaves out triton (0.9 GB, GPU kernels cnndesk does not compile): torch's flop
# counter then logs "triton not found; flop counting will not work" on import. cnndesk counts no
# flops; keep the message out of the user's terminal.
logging.getLogger("torch.utils.flop_counter").setLevel(logging.ERROR)

# A frozen app has no Python of its own: the export's parity check (core/export/bundle_check.py)
# runs the bundle's predict.py as `cnndesk --run-bundle-script predict.py ARGS…`, as a user runs
# `python predict.py ARGS…`. Handled before cnndesk is imported, so predict.py loads its own
# vendored copy of the loader, not the app's.
RUN_SCRIPT = "--run-bundle-script"
if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == RUN_SCRIPT:
    import runpy

    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    sys.exit(0)

from cnndesk.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
