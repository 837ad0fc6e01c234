"""Pure domain model: aggregates, values and errors. No I/O here."""
