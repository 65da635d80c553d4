"""`swift eval`: score predictions files, generate them with any engine plugin, or drive
lm-evaluation-harness against `swift deploy`; one JSON report, a terminal table, bar charts.

Modules, one job each: `rows` (what is scored), `predictions` (reading predictions and results
files), `tasks` (task files and benchmarks by name, local or hub), `scoring` (choosing and running
scorer plugins), `generate` (predictions from an engine, cached), `report` and `chart` (output),
`lm_eval_backend` (lm-evaluation-harness over HTTP), `runner` (the command's stages).
"""
