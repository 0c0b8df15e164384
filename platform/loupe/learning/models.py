"""Tables of this app arrive with their issue."""
