"""The Label workspace (issue 22): see :mod:`.workspace`."""
