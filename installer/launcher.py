"""PyInstaller entry point: the same ``main()`` as the ``cxr-viewer`` console script.

With no argument it opens the viewer; ``--self-test`` checks the installation (see
``cxr_viewer/selftest.py``). Models and resources are found through ``sys._MEIPASS``
(``cxr_viewer/paths.py``), never through the current directory.
"""

import multiprocessing
import sys

from cxr_viewer.cli import main

if __name__ == "__main__":
    # A frozen app re-executes itself for child processes; this stops them at the right place.
    multiprocessing.freeze_support()
    sys.exit(main())
