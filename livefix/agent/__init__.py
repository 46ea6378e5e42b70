"""livefix agent: serves livefix requests without a debugger (see issue 6)."""
