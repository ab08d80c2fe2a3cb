"""API schemas of the add-on releases the roles pin, written down from their API references
(see README.md), and a strict validator for rendered manifests (validator.py)."""
