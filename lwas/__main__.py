import sys

from lwas.tools.cli import main

sys.exit(main())
