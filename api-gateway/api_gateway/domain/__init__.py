"""The gateway's logic: identity (tokens, projects, users, roles, grants, the catalog,
passwords, first start), the policy table, and the event fan-out. No HTTP here."""
