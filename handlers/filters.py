"""Async filters for the routers.

aiogram runs a synchronous filter (a magic `F.…` expression included) in a worker thread, which costs
about 200 µs per check and was most of a location update's cost; these coroutines cost next to nothing.
"""

from __future__ import annotations

from aiogram.types import Message


async def private_chat(message: Message) -> bool:
    return message.chat.type == "private"


async def has_location(message: Message) -> bool:
    return message.location is not None


async def has_venue(message: Message) -> bool:
    return message.venue is not None


async def has_photo(message: Message) -> bool:
    return bool(message.photo)


async def has_text(message: Message) -> bool:
    return message.text is not None


async def plain_text(message: Message) -> bool:
    """Text that is not a command."""
    return message.text is not None and not message.text.startswith("/")
