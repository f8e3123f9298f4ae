"""Docker engines and Swarms as clusters: their pages, API, form and jobs (probe, node availability)."""
