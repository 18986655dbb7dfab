"""Route planning adapters: benchmark file formats (Solomon, TRSP) and the PyVRP solver behind
``incucare.domain.routing``."""
