from cxr_viewer.cli import main

raise SystemExit(main())
