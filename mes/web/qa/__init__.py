"""The hub's QA pages: the queue, review by exception, deviations, release and the full record."""
