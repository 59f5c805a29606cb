"""``ddlvad serve``: cameras watched live, alerts decided by rules and sent to files and hooks,
and a local web dashboard (the ``serve`` extra: Starlette + uvicorn).

    rules.py    alert rule: threshold, minimum event length, cooldown (also calibrate's)
    zones.py    ignore-zone polygons (JSON or YAML) -> error-map masks
    alerts.py   alerts.jsonl (appended, fsync'd), snapshots and WebM clips
    hooks.py    webhook POST with retries, a command per alert; never blocking detection
    camera.py   one worker thread per camera: read (with reconnect), score, decide
    app.py      the Starlette app: the page, the JSON API, server-sent events
    server.py   the process: workers, web server, signals, summary.json

Only ``app.py`` and ``server.py`` import Starlette / uvicorn.
"""
