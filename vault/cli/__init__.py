"""The command line: parsing, the one error boundary, rendering, one module per command group."""
