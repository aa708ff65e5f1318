"""The gettext catalogues, as package data: `<locale>/LC_MESSAGES/messages.po` are the translators'
sources, the `.mo` files beside them are compiled by the build (see `setup.py`) and read by `bot.i18n`."""
