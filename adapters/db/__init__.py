"""The relational database: models, engine, and the repositories that implement core ports."""
