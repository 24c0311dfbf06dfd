"""One module per command group: parse results in, one core call, rendering out."""
