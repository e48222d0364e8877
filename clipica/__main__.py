from clipica.cli import main

raise SystemExit(main())
