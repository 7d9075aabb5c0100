"""python -m classtrack ..."""
import sys

from classtrack.cli import main

if __name__ == "__main__":
    sys.exit(main())
