"""Build step beyond pyproject.toml: compile the gettext catalogs with Babel.

``xmailnb/locale/<lang>/LC_MESSAGES/xmailnb.po`` is the source translators
edit; the ``.mo`` beside it in the built package is what the product reads.
For an editable install the ``.mo`` is written next to the ``.po`` in the
source tree (git ignores it), since that tree is what gets imported.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_catalogs(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path("xmailnb/locale").glob("*/LC_MESSAGES/*.po")):
            if getattr(self, "editable_mode", False):
                target = po.with_suffix(".mo")
            else:
                target = Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(po, "rb") as fh:
                catalog = read_po(fh, abort_invalid=True)
            with open(target, "wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": build_py_with_catalogs})
