"""What operators watch: Prometheus metrics (/metrics, and a port of their own for the
workers, beat and the relay) and log lines that carry the inspection, request and user ids."""
