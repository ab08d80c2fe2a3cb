"""provision's Kubernetes simulator (test infrastructure): see README.md here."""
