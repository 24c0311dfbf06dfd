"""What the tests run against: the local identity provider, rsyslog, fakes, fault hooks."""
