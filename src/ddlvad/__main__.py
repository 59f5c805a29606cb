from ddlvad.cli import main

raise SystemExit(main())
