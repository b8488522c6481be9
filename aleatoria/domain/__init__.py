"""
The domain core: the hub and its rules -- rooms, direct messages, calls,
matchmaking, resumes, limits. It takes requests as plain values, raises
refusals and emits typed events; it knows no wire, no Redis, no Sentry
(the ports it needs are in L{aleatoria.domain.ports}).
"""
