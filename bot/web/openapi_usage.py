"""The OpenAPI description of the station evaluation's counting routes (bot/web/usage_api.py);
`build_openapi` merges these paths and schemas into the one document."""

from __future__ import annotations

from typing import Any

from bot.services.evaluation import MAX_BEACON_EVENTS
from bot.web.usage_api import API_PREFIX, KINDS, MAX_CODE
from domain.navigation import MapApp


def usage_paths() -> dict[str, Any]:
    error = {
        "description": "Refused: `error.code` says why, `error.parameter` names the field at fault",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return {
        f"{API_PREFIX}/usage": {
            "post": {
                "tags": ["h5"],
                "operationId": "usageBeacon",
                "summary": "Count what the H5 page showed and what its rider tapped",
                "description": (
                    "For the stations' yearly evaluation: a card shown (`view`), a tap on a map app "
                    "(`navigate`) or on the phone number (`call`). Each (station, kind) counts once per "
                    "beacon; unknown codes are ignored. Only counts per station and day are kept: no "
                    "client, no position. Sent with `navigator.sendBeacon`, so any content type is read "
                    "as JSON."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/UsageBeacon"}},
                        "text/plain": {"schema": {"$ref": "#/components/schemas/UsageBeacon"}},
                    },
                },
                "responses": {
                    "202": {
                        "description": "Counted",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/UsageCounted"}}
                        },
                    },
                    "400": error,
                    "413": error,
                    "429": error,
                },
            }
        },
        f"{API_PREFIX}/go/{{code}}/{{app}}": {
            "get": {
                "tags": ["h5"],
                "operationId": "countedNavigation",
                "summary": "Count a navigation tap and go to the map app's page for the station",
                "description": "The bot's map buttons point here when PUBLIC_URL is set.",
                "parameters": [
                    {
                        "name": "code",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": MAX_CODE},
                        "description": "The station's code",
                    },
                    {
                        "name": "app",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": [app.value for app in MapApp]},
                        "description": "The map app",
                    },
                ],
                "responses": {
                    "302": {
                        "description": "To the map app's marker page (WGS-84)",
                        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                    },
                    "404": error,
                    "429": error,
                },
            }
        },
    }


def usage_schemas() -> dict[str, Any]:
    return {
        "UsageBeacon": {
            "type": "object",
            "required": ["events"],
            "properties": {
                "events": {
                    "type": "array",
                    "maxItems": MAX_BEACON_EVENTS,
                    "items": {
                        "type": "object",
                        "required": ["station", "kind"],
                        "properties": {
                            "station": {"type": "string", "minLength": 1, "maxLength": MAX_CODE},
                            "kind": {"type": "string", "enum": list(KINDS)},
                        },
                    },
                }
            },
        },
        "UsageCounted": {
            "type": "object",
            "required": ["counted"],
            "properties": {"counted": {"type": "integer", "minimum": 0}},
            "additionalProperties": False,
        },
    }
