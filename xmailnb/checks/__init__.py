"""Checks of a MailRoot and of the running server: findings, the diagnosis,
the live probe and the step progress read from them."""
