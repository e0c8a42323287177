"""The sync API takes no HTML forms: its request bodies are JSON or signed JWS text.

Their shapes are described in ``openapi.json`` next to this module (and served at
``/api/v1/openapi.json``); the views check them and answer 4xx JSON errors.
"""
