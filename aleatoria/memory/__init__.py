"""
The embedded backend: every seam of the domain (streams, sessions,
matchmaking, bus) in this process's memory, for one daemon alone.
"""
