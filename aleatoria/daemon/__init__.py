"""
The daemon's assembly: settings, the twistd command line, workers, and
L{service.make_service}, which builds every part and injects them.
"""
