"""Reading: queries over the read models in the spec's shapes, and the reviewers' reads of the store (history, as-of records, verify)."""
