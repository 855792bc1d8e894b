"""`python -m rlaasctl`: the same as the `rlaasctl` script."""

import sys

from rlaasctl.main import main

if __name__ == "__main__":
    sys.exit(main())
