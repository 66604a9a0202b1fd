"""The team console: server-rendered pages for a brand's staff, one team at a time."""
