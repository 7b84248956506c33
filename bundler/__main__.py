from bundler.main import main

raise SystemExit(main())
