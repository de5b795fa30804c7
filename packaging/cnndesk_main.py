"""PyInstaller entry point: the same as `python -m cnndesk`."""

import logging
import sys

# the full bundle leaves out triton (0.9 GB, GPU kernels cnndesk does not compile): torch's flop
# counter then logs "triton not found; flop counting will not work" on import. cnndesk counts no
# flops; keep the message out of the user's terminal.
logging.getLogger("torch.utils.flop_counter").setLevel(logging.ERROR)

from cnndesk.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
