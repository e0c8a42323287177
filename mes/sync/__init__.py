"""Moving records between a spoke and its hub.

The spoke's HTTP client and background loop, and transfer files for air-gapped sites. The rules
live in :mod:`mes.core.sync` and the services.
"""
