"""The HTTP API: commands and queries with role-based access and an access log."""
