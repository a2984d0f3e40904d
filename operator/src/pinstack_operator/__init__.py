"""The PinstackStack operator."""
