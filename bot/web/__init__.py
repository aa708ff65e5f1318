"""The HTTP side of yizhan: API v1 (JSON, GeoJSON), its OpenAPI document and the health check.

`build_web_app(core)` builds the aiohttp application; `yizhan serve` runs it on its own. Handlers stay thin
and call the same services as the bot and the command line.
"""

from __future__ import annotations

from bot.web.app import access_log_options, build_web_app

__all__ = ["access_log_options", "build_web_app"]
