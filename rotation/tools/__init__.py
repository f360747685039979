"""Read-only tools for people: `diagnose` (why does this secret not sign in?) and `inventory`
(every credential of every app, and when it lapses). They never write.
"""
