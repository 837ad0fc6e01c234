"""The reviewers' console: server-rendered pages at /console over the API's own rules.

Sign-in takes an API token and keeps it in a session cookie; every page and
fragment then authorizes through ``ledger.api.deps`` exactly as the API does.
"""
