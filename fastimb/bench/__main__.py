import sys

from fastimb.bench._runner import main

sys.exit(main())
