"""The connections of this daemon: one per user at a time, owned by the hub."""

from collections.abc import KeysView

from aleatoria.domain.ports import IConnection


class Connections:
    """Each connected user's L{aleatoria.domain.ports.IConnection}."""

    def __init__(self) -> None:
        self._by_user: dict[str, IConnection] = {}

    def __len__(self) -> int:
        return len(self._by_user)

    def __contains__(self, user: object) -> bool:
        return user in self._by_user

    def get(self, user: str) -> IConnection | None:
        return self._by_user.get(user)

    def users(self) -> KeysView[str]:
        return self._by_user.keys()

    def all(self) -> list[IConnection]:
        return list(self._by_user.values())

    def current(self, conn: IConnection) -> bool:
        """Whether C{conn} is its user's connection (not replaced, not gone)."""
        return self._by_user.get(conn.user_id) is conn

    def add(self, conn: IConnection) -> IConnection | None:
        """C{conn} is its user's connection now; the one it replaces, or C{None}."""
        previous = self._by_user.get(conn.user_id)
        self._by_user[conn.user_id] = conn
        return previous

    def remove(self, conn: IConnection) -> bool:
        """Forget C{conn} if it is its user's connection; whether it was."""
        if self._by_user.get(conn.user_id) is not conn:
            return False
        del self._by_user[conn.user_id]
        return True
