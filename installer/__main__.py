from installer.main import main

raise SystemExit(main())
