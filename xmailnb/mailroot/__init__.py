"""The MailRoot: where XMail keeps its files, server.tab, the store (the one
writer), the workbook's own settings and the practice sandbox.

The names most code needs are importable from the package itself
(``from xmailnb.mailroot import MailRoot, resolve``); each lives in its
module (layout, resolve, sandbox, store).
"""

from .layout import MANAGED_FILES, MailRoot, data_dir, describe, is_managed, read_problem, sandbox_path
from .resolve import resolve
from .sandbox import create_sandbox
from .store import recover_interrupted

__all__ = ["MailRoot", "resolve", "describe", "sandbox_path", "data_dir", "create_sandbox", "MANAGED_FILES",
           "is_managed", "read_problem", "recover_interrupted"]
