"""Transports run commands on one host: over SSH for nodes, as subprocesses on the controller."""
