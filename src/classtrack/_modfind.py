"""Whether a module can be imported, without importing it: the one
``importlib.util.find_spec`` wrapper of classtrack (``run -m``, its
``--track-package`` warnings, ``--follow-fork`` and the pytest plugin)."""
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from typing import Optional


def find_spec(name: str, first_on_path: Optional[str] = None) -> Optional[ModuleSpec]:
    """The spec of module `name`, or None when there is none: no such
    module, a parent package that fails to import, or a name find_spec
    refuses (ImportError, ValueError).  With `first_on_path`, that folder is
    looked in first, as the program it will be ``sys.path[0]`` of sees it."""
    if first_on_path is not None:
        sys.path.insert(0, first_on_path)
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    finally:
        if first_on_path is not None:
            sys.path.remove(first_on_path)


def importable(name: str, first_on_path: Optional[str] = None) -> bool:
    """Imported already, or a spec can be found (see ``find_spec``)."""
    return name in sys.modules or find_spec(name, first_on_path) is not None
