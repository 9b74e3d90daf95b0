"""Workspace API: items and categories on PostgreSQL (port 3200), and the LowDB importer."""
