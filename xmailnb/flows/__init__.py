"""What a user does: CSR, install, settings, rollback and the checklist, the
practice CA, ACME and the notice for mail-client users."""
