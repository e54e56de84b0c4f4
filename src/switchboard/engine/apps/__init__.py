"""Dialplan applications beyond the core ones of engine/dialplan_exec.py, one module per Asterisk
module (app_queue, res_parking, app_agent_pool): each registers its applications with
`dialplan_exec.application` when imported. Importing this package imports them all (the call engine
does, once), so a new module here needs no other wiring."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
