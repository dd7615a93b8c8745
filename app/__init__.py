"""Copydesk: Word manuscripts in, WordPress posts out."""
