"""Applications built on the pipeline: localisation, search, streaming, the web app."""
