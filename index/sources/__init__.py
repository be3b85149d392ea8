"""Sources: each turns its own format into ImageRecord lists."""
