"""Operations: the Prometheus metrics every process counts into, its logs, and the supervisor of ledger up."""
