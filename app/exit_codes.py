"""The exit statuses of the `hearth` program, one list for the command line
and the window's own entry points (launch, the hidden self-tests)."""

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NO_DISPLAY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
