"""Planning and executing runs: batches of hosts, steps in order, results as data."""
