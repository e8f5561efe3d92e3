"""The Sovereign's Blueprint catalog as the API serves it: loaded once, lazily, off the loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from catalyst_kernel.blueprints.catalog import Catalog, FolderSource

if TYPE_CHECKING:
    from catalyst_kernel.blueprints.catalog import CatalogView
    from catalyst_kernel.model.principal import Principal
    from catalyst_kernel.settings import Settings

__all__ = ["CatalogHolder"]


class CatalogHolder:
    """Loads the catalog from ``settings.catalog_paths`` on first use; broken Blueprints are
    left out and reported by :attr:`Catalog.problems`, never fatal to the service."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._catalog: Catalog | None = None
        self._lock = anyio.Lock()

    async def catalog(self) -> Catalog:
        async with self._lock:
            if self._catalog is None:
                sources = [FolderSource(path) for path in self._settings.catalog_paths]
                self._catalog = await anyio.to_thread.run_sync(Catalog.load, sources)
            return self._catalog

    async def view_for(self, principal: Principal) -> CatalogView:
        """The catalog as ``principal`` may see it (SPEC §5.1 visibility)."""
        catalog = await self.catalog()
        return catalog.view(principal.organization, sovereign_admin=principal.is_sovereign_admin)

    def reset(self) -> None:
        """Forget the loaded catalog; the next use reloads it."""
        self._catalog = None
