"""The Azure Functions edge: triggers (sweep, events, worker, HTTP) and the host glue (host.json,
the queue client, the client principal, what to do with a queue message after a reconcile).
"""
