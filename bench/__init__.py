"""Performance benchmark of the streaming path: the naive design, a raw websockets floor, Tickerdeck."""
