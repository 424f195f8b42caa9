"""``python -m dreamline``: the console script (dreamline.start)."""

import sys

from dreamline.start import main

if __name__ == "__main__":
    sys.exit(main())
