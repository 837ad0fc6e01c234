"""Operations: the Prometheus metrics every process counts into, its logs, the supervisor of ledger up, and paging."""
