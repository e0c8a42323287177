"""The domain: plain Python rules of GMP records, with no Flask, SQLAlchemy or I/O.

Time, actor and terminal are always passed in, so the rules are deterministic and replayable.
"""
