"""The backend as the hub takes it: one object holding each seam (memory or Redis)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aleatoria.domain.ports import IBus, IMatchmaking, ISessions, IStreams
    from aleatoria.domain.safety_ports import IBans, IBlocks, IReports


class Backend(Protocol):
    """The seams a backend (memory or Redis) hands the hub, as attributes of one object."""

    @property
    def streams(self) -> IStreams: ...

    @property
    def sessions(self) -> ISessions: ...

    @property
    def matchmaking(self) -> IMatchmaking: ...

    @property
    def bus(self) -> IBus: ...

    @property
    def blocks(self) -> IBlocks: ...

    @property
    def reports(self) -> IReports: ...

    @property
    def bans(self) -> IBans: ...
