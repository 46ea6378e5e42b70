"""livefix debug adapter: debugpy's adapter plus livefix's custom DAP requests."""
