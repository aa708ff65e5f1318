"""aiogram routers, one per journey; each module exports `router`."""
