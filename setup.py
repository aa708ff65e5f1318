"""Build hook: the gettext catalogues are compiled while the package is built.

`locales/` holds the translators' `.po` files; the running bot reads compiled `.mo` files, which are
build products and not in git. `build_py` compiles each `locales/<locale>/LC_MESSAGES/messages.po` into the
build directory, so every wheel ships complete catalogues as package data of the `locales` package
(`bot.i18n` finds them with `importlib.resources`). An editable install compiles them next to the sources
instead, where the checkout reads them. Fuzzy entries are left out and a catalogue with errors stops the
build, like `pybabel compile`. Everything else is declared in `pyproject.toml`.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
LOCALES = ROOT / "locales"


def compile_catalogues(target: Path) -> list[Path]:
    """Compile every `locales/*/LC_MESSAGES/*.po` into the same layout under `target`."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    sources = sorted(LOCALES.glob("*/LC_MESSAGES/*.po"))
    if not sources:
        raise SystemExit(f"no catalogue to compile under {LOCALES}")
    written = []
    for po_path in sources:
        with po_path.open("rb") as po:
            catalog = read_po(po, locale=po_path.parent.parent.name)
        problems = [
            f"{po_path.relative_to(ROOT)}: {message.id!r}: {error}"
            for message, errors in catalog.check()
            for error in errors
        ]
        if problems:
            raise SystemExit("invalid catalogue:\n" + "\n".join(problems))
        mo_path = target / po_path.relative_to(LOCALES).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with mo_path.open("wb") as mo:
            write_mo(mo, catalog, use_fuzzy=False)
        written.append(mo_path)
    return written


class BuildPyWithCatalogues(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            compile_catalogues(LOCALES)
        else:
            self._catalogues = [str(path) for path in compile_catalogues(Path(self.build_lib) / "locales")]

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *getattr(self, "_catalogues", [])]


setup(cmdclass={"build_py": BuildPyWithCatalogues})
