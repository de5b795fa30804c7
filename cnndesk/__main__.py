import sys

from cnndesk.cli import main

sys.exit(main())
