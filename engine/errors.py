class InputError(ValueError):
    """Bad input from the user: the message is one line that says what to do."""
