"""The ``xmailnb`` command (:mod:`xmailnb.cli.main`) and one module per command."""
