"""The write path: parsing commands, one handler per command, the unit of work, the application, sharded ingest."""
