"""
Aleatoria: a Twisted server for Omegle-style apps -- random video chat
matchmaking, rooms with history and direct messages, over one WebSocket.
"""

__version__ = "0.1.0"
