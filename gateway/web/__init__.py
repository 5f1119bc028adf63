"""The web edge: the ASGI app, its endpoints, the lifespan runtime and the command line."""
