"""
The WebSocket edge: admission of connections, the Autobahn protocol,
decoding frames into messages, routing them to the hub, and the one
renderer of events and replies into frames.
"""
