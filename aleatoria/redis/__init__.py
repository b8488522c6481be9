"""
The Redis backend: the same seams, shared by every daemon on one Redis --
its Lua scripts in C{lua/}, its keys and channels named in L{keys}, the
stored format in L{codec}, the connections in L{link} and L{connection}.
"""
