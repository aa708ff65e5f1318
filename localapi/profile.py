"""Bot profile methods of the local Bot API: getMe, getChat, commands, descriptions and the menu button."""

from __future__ import annotations

import copy
from typing import Any

from localapi.state import COMMAND_RE, Files, Params, ServerState, bad_request, json_dumps


class ProfileMethods(ServerState):
    """What the bot says about itself, per scope and language."""

    # ------------------------------------------------------------------ methods: the bot and its chats

    async def _get_me(self, params: Params, files: Files) -> Any:
        return dict(self.bot_user)

    async def _get_chat(self, params: Params, files: Files) -> Any:
        chat = self._chat_for(params)
        return {
            **chat.info,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }

    # ------------------------------------------------------------------ methods: bot profile

    @staticmethod
    def _scope_key(params: Params) -> str:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        return json_dumps(dict(sorted(scope.items())))

    async def _set_my_commands(self, params: Params, files: Files) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not COMMAND_RE.match(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self._scope_key(params), str(params.get("language_code") or ""))
        if commands:
            self._commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self._commands.pop(key, None)
        self._notify()
        return True

    async def _get_my_commands(self, params: Params, files: Files) -> Any:
        key = (self._scope_key(params), str(params.get("language_code") or ""))
        return copy.deepcopy(self._commands.get(key, []))

    async def _delete_my_commands(self, params: Params, files: Files) -> Any:
        self._commands.pop((self._scope_key(params), str(params.get("language_code") or "")), None)
        self._notify()
        return True

    async def _set_description(self, field_name: str, max_length: int, params: Params, files: Files) -> Any:
        value = str(params.get(field_name) or "")
        if len(value) > max_length:
            raise bad_request(f"{field_name.upper()}_INVALID")
        key = (field_name, str(params.get("language_code") or ""))
        if value:
            self._descriptions[key] = value
        else:
            self._descriptions.pop(key, None)
        self._notify()
        return True

    async def _get_description(self, field_name: str, params: Params, files: Files) -> Any:
        return {field_name: self._descriptions.get((field_name, str(params.get("language_code") or "")), "")}

    def description(self, field_name: str = "description", language_code: str = "") -> str:
        """What setMyDescription (or setMyShortDescription, setMyName) stored, falling back to the default."""
        return self._descriptions.get((field_name, language_code)) or self._descriptions.get(
            (field_name, ""), ""
        )

    async def _set_chat_menu_button(self, params: Params, files: Files) -> Any:
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise bad_request("can't parse menu button JSON object")
        if params.get("chat_id") is not None:
            self._chat_for(params).menu_button = button
        else:
            self._default_menu_button = button
        return True

    async def _get_chat_menu_button(self, params: Params, files: Files) -> Any:
        if params.get("chat_id") is not None:
            return self._chat_for(params).menu_button or self._default_menu_button
        return self._default_menu_button

    @property
    def commands(self) -> dict[str, list[dict[str, Any]]]:
        """Commands of the default scope, keyed by language_code ("" for all languages)."""
        default = self._scope_key({})
        return {
            lang: copy.deepcopy(cmds) for (scope, lang), cmds in self._commands.items() if scope == default
        }

    def scoped_commands(self, scope: dict[str, Any], language_code: str = "") -> list[dict[str, Any]]:
        return copy.deepcopy(self._commands.get((self._scope_key({"scope": scope}), language_code), []))

    def commands_for(self, language_code: str, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The menu a user would see: Telegram's scope and language fallback, narrowest first."""
        scopes: list[dict[str, Any]] = []
        if chat_id is not None:
            scopes.append({"type": "chat", "chat_id": chat_id})
        scopes += [{"type": "all_private_chats"}, {"type": "default"}]
        for scope in scopes:
            for lang in (language_code, ""):
                found = self._commands.get((self._scope_key({"scope": scope}), lang))
                if found:
                    return copy.deepcopy(found)
        return []
