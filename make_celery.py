"""Entry point of the worker and beat: ``celery -A make_celery worker -B``."""

from web import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
