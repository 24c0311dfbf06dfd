"""The real `vault` executable as a subprocess, against real peers on loopback."""
