"""netops: declarative runbooks for Kubernetes node networking, executed over SSH."""

__version__ = "0.1.0"
