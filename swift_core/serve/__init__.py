"""The OpenAI-compatible HTTP server over any inference engine (`swift deploy`).

`swift_core.serve.app.create_app(engine, config)` builds the FastAPI app; fastapi is imported only
by the modules of this package that need it, never by this one.
"""
