"""ASGI entry point for uvicorn and other servers: ``incucare.web.asgi:app``."""

from incucare.web.app import create_app

app = create_app()
