from twisted.application.service import ServiceMaker

Aleatoria = ServiceMaker(
    "Aleatoria",
    "aleatoria.tap",
    "Random video chat, rooms and direct messages over WebSocket.",
    "aleatoria",
)
