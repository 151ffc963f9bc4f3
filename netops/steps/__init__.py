"""Step kinds: each reads current state (probe + parse), decides (diff) and acts (apply)."""
