from k8s_install.main import main

raise SystemExit(main())
