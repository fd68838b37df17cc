"""The face gallery (1:N): duplicate checks across a merchant's customers, and its blocklist.

rotation.py: the secret rotation templates are stored under; exact.py: the in-memory exact search of the
SQLite engine; checks.py: what a search finds, as risk signals (pure); service.py: when to enrol, search
and forget. The rows and both engines' SQL are in server/storage/gallery.py.
"""
