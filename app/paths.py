"""Where Hearth keeps its configuration, data and caches.

`HEARTH_HOME` puts everything under one folder (portable installs, tests);
otherwise the platform's per-user folders (platformdirs) are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "hearth"


class DataDirError(OSError):
    """A Hearth folder cannot be created or written."""


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def conversations_db(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    @classmethod
    def under(cls, root: Path) -> Paths:
        """Every folder inside one (HEARTH_HOME, an evaluation's workspace)."""
        return cls(config_dir=root / "config", data_dir=root / "data",
                   cache_dir=root / "cache", log_dir=root / "logs")

    def ensure(self, *dirs: Path) -> None:
        """Create the given folders (all of them by default) or say clearly why not."""
        for d in dirs or (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataDirError(
                    f"Hearth cannot create its folder {d}: {exc.strerror or exc}."
                ) from exc
            if not os.access(d, os.W_OK | os.X_OK):
                raise DataDirError(
                    f"Hearth cannot write to its folder {d}: permission denied."
                )

    def as_dict(self) -> dict[str, str]:
        return {
            "config_dir": str(self.config_dir),
            "data_dir": str(self.data_dir),
            "cache_dir": str(self.cache_dir),
            "log_dir": str(self.log_dir),
        }


def get_paths() -> Paths:
    """Resolve Hearth's folders now (reads HEARTH_HOME every call; nothing is created)."""
    home = os.environ.get("HEARTH_HOME")
    if home:
        return Paths.under(Path(home).expanduser().absolute())
    import platformdirs

    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
