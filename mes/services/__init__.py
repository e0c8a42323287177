"""Use cases. One function = one permission check + one transaction.

Actor, terminal and time come in as a :class:`~mes.services.context.Context`; a service never
reads request globals or the clock.
"""
