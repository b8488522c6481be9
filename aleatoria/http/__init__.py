"""
HTTP beside the WebSocket: /health, /ready, /metrics, the server API
and its OpenAPI document, the demo app, and the sites that screen a
request before its body is read.
"""
