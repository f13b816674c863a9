"""The errands front door: the fifteen-minute promise (issue #7)."""
