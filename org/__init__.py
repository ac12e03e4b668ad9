"""Organisation: branches, staff, roles and scopes — the one place that answers "may this person see/do this"."""
