"""``python -m data_prep.features``: the feature stage, as before the subpackages (see ``extraction``)."""

import sys

from data_prep.features.extraction import main

sys.exit(main())
