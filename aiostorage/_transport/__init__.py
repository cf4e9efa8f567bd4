"""How requests reach S3 below the engines."""
