"""The Azure Functions edge: one module per trigger family, and the host glue they share.

Trigger families (each ``blueprint(config)`` returns a ``func.Blueprint``; ``function_app.py``
registers them): ``sweep`` (timer), ``events`` (Event Grid), ``worker`` (the requests queue and its
poison queue), ``http`` (the operator API). They are built from an :class:`functions.config.EdgeConfig`
rather than module globals, so tests run the very same functions with a short lease or a failing
runtime.

Host glue: ``config`` (EdgeConfig), ``host`` (binding names, host.json, the queue client, settings
per invocation), ``principal`` (the HTTP caller and its role), ``http_input`` (the rotate body),
``replies`` (the HTTP error shape), ``disposition`` (complete, retry or defer a queue message).
Decisions about secrets are not made here: they live in ``rotation``.
"""
