from twisted.application.service import ServiceMaker

Aleatoria = ServiceMaker(
    "Aleatoria",
    "aleatoria.daemon.tap",
    "Random video chat, rooms and direct messages over WebSocket.",
    "aleatoria",
)
