"""The connections of this daemon: one per user at a time, owned by the hub."""


class Connections:
    """Each connected user's L{aleatoria.domain.ports.IConnection}."""

    def __init__(self):
        self._by_user = {}

    def __len__(self):
        return len(self._by_user)

    def __contains__(self, user):
        return user in self._by_user

    def get(self, user):
        return self._by_user.get(user)

    def users(self):
        return self._by_user.keys()

    def all(self):
        return list(self._by_user.values())

    def current(self, conn):
        """Whether C{conn} is its user's connection (not replaced, not gone)."""
        return self._by_user.get(conn.user_id) is conn

    def add(self, conn):
        """C{conn} is its user's connection now; the one it replaces, or C{None}."""
        previous = self._by_user.get(conn.user_id)
        self._by_user[conn.user_id] = conn
        return previous

    def remove(self, conn):
        """Forget C{conn} if it is its user's connection; whether it was."""
        if self._by_user.get(conn.user_id) is not conn:
            return False
        del self._by_user[conn.user_id]
        return True
