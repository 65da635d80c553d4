"""`swift infer`: its arguments, interactive chat and batch mode, resumable results, reward scoring.

The engines it drives are built on the engine kit (`swift_core.engines`); `--port` is served by
`swift deploy`'s server, which the command line dispatches to.
"""
