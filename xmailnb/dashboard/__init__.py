"""The dashboard's server side and page side.

* :mod:`xmailnb.dashboard.server` — Voilà behind a door (token, cookie,
  cross-site refusal, bounded kernels); run by ``xmailnb serve`` as
  ``python -m xmailnb.dashboard.server``.
* :mod:`xmailnb.dashboard.page` — what the dashboard notebook learns from the
  browser's request (its language) in the kernel.

Both import Jupyter code, so neither is ever imported by the command line.
"""
