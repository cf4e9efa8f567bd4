"""Transfer engines: they take an ``S3Context`` and never import the store."""
