"""The runbook format: model (schema), load (validation with positions), render (Jinja2)."""
