"""The ``mledge`` command line, on top of everything: it imports the toolkit, export and edge, and
nothing imports it."""
