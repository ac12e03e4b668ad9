"""Settings, database plumbing, Celery configuration and logging: what every package stands on."""
