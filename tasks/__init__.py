"""Staff tasks (任务, never Celery): queues, follow-ups, appointments, claims and verification."""
