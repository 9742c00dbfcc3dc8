"""Certificates and keys: reading what users hand over, keys, CSRs, and the
chain judge (what a verifying mail client would say).  Pure functions over
cryptography's types; nothing here knows about a MailRoot."""
