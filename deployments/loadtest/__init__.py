"""Load tests: put a service (or a URL on a machine of the inventory) under HTTP load and watch."""
