"""livefix language server (pygls)."""
