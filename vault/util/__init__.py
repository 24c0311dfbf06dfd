"""Small shared pieces: records, MACs, text safety, redaction, logging."""
