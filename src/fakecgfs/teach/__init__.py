"""Teaching and documentation tools built on the control-file table."""
