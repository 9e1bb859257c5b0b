import sys

from zhtools.cli import main

sys.exit(main())
