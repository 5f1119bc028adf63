"""The one lookup pipeline and its sources: every rule of a child lookup, in order."""
