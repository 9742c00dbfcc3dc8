"""What the notebooks call besides the widgets: the first cell's MailRoot and
prerequisite check (:mod:`~xmailnb.notebook.guide`) and the runnable hand
checks with ``openssl`` (:mod:`~xmailnb.notebook.handchecks`)."""
